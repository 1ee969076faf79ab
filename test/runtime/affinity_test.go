//go:build linux

package runtime_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/testutil"
)

// TestWorkloadCPUAffinity: container processes run pinned to one CPU while
// the runtime sets them up (internal/linux/nsenter/pin_linux.go); the
// workload, an exec'd process and a hook must still get the affinity the
// runtime was started with, narrowed by the container's cpuset.
func TestWorkloadCPUAffinity(t *testing.T) {
	testutil.RequiresRoot(t)
	if goruntime.NumCPU() < 2 {
		t.Skip("needs 2 CPUs to tell a pinned process from one that is not")
	}
	if _, err := exec.LookPath("taskset"); err != nil {
		t.Skip("needs taskset (util-linux)")
	}
	const show = "grep Cpus_allowed_list /proc/self/status"
	cpuset := func(cpus string) func(*specs.Spec) {
		return func(s *specs.Spec) {
			if s.Linux.Resources == nil {
				s.Linux.Resources = &specs.LinuxResources{}
			}
			s.Linux.Resources.CPU = &specs.LinuxCPU{Cpus: cpus}
		}
	}
	tests := []struct {
		name    string
		taskset string // the runtime's affinity
		mutate  []func(*specs.Spec)
		want    string
	}{
		{"all CPUs", "0-1", nil, "0-1"},
		{"runtime on CPU 0", "0", nil, "0"},
		{"runtime on CPU 1", "1", nil, "1"},
		{"cpuset narrows", "0-1", []func(*specs.Spec){cpuset("1")}, "1"},
		{"cpuset outside the runtime's CPUs", "0", []func(*specs.Spec){cpuset("1")}, "1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := newRT(t)
			taskset := func(cmd *exec.Cmd) {
				cmd.Args = append([]string{"taskset", "-c", tt.taskset}, cmd.Args...)
				cmd.Path, _ = exec.LookPath("taskset")
			}
			id := r.newID()
			b := r.bundle(id, append(tt.mutate, testutil.Shell(show+" >/aff.tmp && mv /aff.tmp /aff; sleep 1000"))...)
			res := r.exec(context.Background(), taskset, "run", "--detach", "--bundle", b.Dir, id)
			if res.code != 0 {
				t.Fatalf("%v", res)
			}
			defer r.run("delete", "--force", id)
			// run --detach returns once the workload is exec'd: wait for
			// its line.
			var line []byte
			for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
				if line, _ = os.ReadFile(filepath.Join(b.Rootfs, "aff")); len(line) > 0 {
					break
				}
			}
			if got := strings.Fields(string(line)); len(got) != 2 || got[1] != tt.want {
				t.Errorf("workload: %q, want Cpus_allowed_list %s", line, tt.want)
			}
			res = r.exec(context.Background(), taskset, "exec", id, "sh", "-c", show)
			if got := strings.Fields(res.stdout); res.code != 0 || len(got) != 2 || got[1] != tt.want {
				t.Errorf("exec: %v, want Cpus_allowed_list %s", res, tt.want)
			}
		})
	}
}
