//go:build linux

package runtime_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/testutil"
)

// TestExec runs processes in a running container.
func TestExec(t *testing.T) {
	t.Parallel()
	r := newRT(t)
	id, _ := r.startDetached()
	initPid := strconv.Itoa(r.state(id).Pid)
	nsTypes := []string{"pid", "net", "mnt", "ipc", "uts", "cgroup"}

	t.Run("joins the init's namespaces", func(t *testing.T) {
		res := r.must("exec", id, "sh", "-c", `for n in `+strings.Join(nsTypes, " ")+`; do readlink /proc/self/ns/$n; done`)
		got := strings.Fields(res.stdout)
		if len(got) != len(nsTypes) {
			t.Fatalf("%v", res)
		}
		for i, n := range nsTypes {
			if want := readlink(t, "/proc/"+initPid+"/ns/"+n); got[i] != want {
				t.Errorf("exec'd process %s namespace = %s, want the init's %s", n, got[i], want)
			}
		}
	})

	t.Run("exit codes", func(t *testing.T) {
		for _, c := range []struct {
			script string
			want   int
		}{{"exit 0", 0}, {"exit 42", 42}, {"kill -KILL $$", 137}, {"kill -TERM $$", 143}} {
			if res := r.run("exec", id, "sh", "-c", c.script); res.code != c.want {
				t.Errorf("exec sh -c %q: want exit %d, got %v", c.script, c.want, res)
			}
		}
	})

	t.Run("flags", func(t *testing.T) {
		res := r.run("exec", "--env", "A=from-flag", "--cwd", "/tmp", "--user", "1000:1000", id, "sh", "-c", `echo $A; pwd; id -u; id -g`)
		wantOut(t, res, "from-flag\n/tmp\n1000\n1000")
	})

	t.Run("process file", func(t *testing.T) {
		p := specs.Process{
			Args:            []string{"sh", "-c", `echo $FOO; pwd; id -u; grep NoNewPrivs /proc/self/status; exit 5`},
			Env:             []string{"PATH=/bin", "FOO=from-process-json"},
			Cwd:             "/home/user",
			User:            specs.User{UID: 1000, GID: 1000},
			NoNewPrivileges: true,
		}
		f := filepath.Join(t.TempDir(), "process.json")
		writeJSON(t, f, p)
		res := r.run("exec", "--process", f, id)
		if res.code != 5 || strings.Join(strings.Fields(res.stdout), " ") != "from-process-json /home/user 1000 NoNewPrivs: 1" {
			t.Errorf("want exit 5 and output from the process.json, got %v", res)
		}
	})

	t.Run("detach with pid file", func(t *testing.T) {
		pidFile := filepath.Join(t.TempDir(), "pid")
		start := time.Now()
		r.must("exec", "--detach", "--pid-file", pidFile, id, "sleep", "100")
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("exec --detach took %v; it should not wait for the process", d)
		}
		pid := readFile(t, pidFile)
		if comm := readFile(t, "/proc/"+pid+"/comm"); comm != "sleep" {
			t.Errorf("pid file names %s (comm %q), want the exec'd sleep", pid, comm)
		}
		if got, want := readlink(t, "/proc/"+pid+"/ns/pid"), readlink(t, "/proc/"+initPid+"/ns/pid"); got != want {
			t.Errorf("detached exec pid namespace %s, want the init's %s", got, want)
		}
		if cg := readFile(t, "/proc/"+pid+"/cgroup"); !strings.Contains(cg, "memory:/") {
			t.Logf("detached exec cgroup: %s", cg)
		}
		procs := cgFile(t, "memory", id, "cgroup.procs")
		if !strings.Contains(" "+strings.Join(strings.Fields(procs), " ")+" ", " "+pid+" ") {
			t.Errorf("detached exec %s not in the container's memory cgroup (%q)", pid, procs)
		}
	})
}

// TestExecStopped: exec into a stopped container fails with a clear error.
func TestExecStopped(t *testing.T) {
	t.Parallel()
	r := newRT(t)
	id := r.newID()
	b := r.bundle(id, testutil.Shell("exit 0"))
	r.must("run", "--detach", "--bundle", b.Dir, id)
	r.waitStatus(id, specs.StateStopped)
	res := r.run("exec", id, "true")
	if res.code == 0 || !strings.Contains(strings.ToLower(res.stderr), "not running") {
		t.Errorf("exec into a stopped container: want an error saying it is not running, got %v", res)
	}
	_ = os.Remove
}
