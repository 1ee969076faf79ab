//go:build linux

package runtime_test

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/testutil"
)

// requireV1 skips unless the v1 controllers these tests read are mounted
// (this suite's host is hybrid: v1 controllers, v2 with hugetlb only).
func requireV1(t *testing.T, ctrls ...string) {
	t.Helper()
	for _, c := range ctrls {
		if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", c, "cgroup.procs")); err != nil {
			t.Skipf("cgroup v1 %s controller not mounted at /sys/fs/cgroup/%s", c, c)
		}
	}
}

func cgFile(t *testing.T, ctrl, id, file string) string {
	t.Helper()
	return readFile(t, filepath.Join("/sys/fs/cgroup", ctrl, cgroupParent, id, file))
}

// TestCgroupLimitsWritten: resources in config.json reach the cgroup files
// at cgroupsPath, the init is in that cgroup in every hierarchy, and
// `update --resources` changes them on a running container.
func TestCgroupLimitsWritten(t *testing.T) {
	t.Parallel()
	requireV1(t, "memory", "cpu", "pids", "freezer")
	r := newRT(t)
	id, _ := r.startDetached(func(s *specs.Spec) {
		s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: i64(32 << 20)}
		s.Linux.Resources.CPU = &specs.LinuxCPU{Shares: u64(512), Quota: i64(50000), Period: u64(100000)}
		s.Linux.Resources.Pids = &specs.LinuxPids{Limit: i64(10)}
	})
	pid := strconv.Itoa(r.state(id).Pid)

	for _, ctrl := range []string{"memory", "cpu", "pids", "freezer", "devices", "blkio", "cpuset"} {
		if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", ctrl)); err != nil {
			continue
		}
		procs := strings.Fields(cgFile(t, ctrl, id, "cgroup.procs"))
		if !slices.Contains(procs, pid) {
			t.Errorf("%s: init %s not in %s/%s/cgroup.procs (%v)", ctrl, pid, cgroupParent, id, procs)
		}
	}
	// The container's own view (no cgroup namespace in the host's files).
	if got := readFile(t, "/proc/"+pid+"/cgroup"); !strings.Contains(got, ":memory:"+cgroupParent+"/"+id+"\n") && !strings.HasSuffix(got, ":memory:"+cgroupParent+"/"+id) {
		t.Errorf("/proc/%s/cgroup lacks memory:%s/%s:\n%s", pid, cgroupParent, id, got)
	}
	for _, c := range []struct{ ctrl, file, want string }{
		{"memory", "memory.limit_in_bytes", strconv.Itoa(32 << 20)},
		{"cpu", "cpu.shares", "512"},
		{"cpu", "cpu.cfs_quota_us", "50000"},
		{"cpu", "cpu.cfs_period_us", "100000"},
		{"pids", "pids.max", "10"},
	} {
		if got := cgFile(t, c.ctrl, id, c.file); got != c.want {
			t.Errorf("%s = %s, want %s", c.file, got, c.want)
		}
	}

	resFile := filepath.Join(t.TempDir(), "resources.json")
	writeJSON(t, resFile, specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: i64(64 << 20)},
		CPU:    &specs.LinuxCPU{Quota: i64(20000)},
		Pids:   &specs.LinuxPids{Limit: i64(20)},
	})
	r.must("update", "--resources", resFile, id)
	for _, c := range []struct{ ctrl, file, want string }{
		{"memory", "memory.limit_in_bytes", strconv.Itoa(64 << 20)},
		{"cpu", "cpu.cfs_quota_us", "20000"},
		{"cpu", "cpu.shares", "512"}, // not in the update: unchanged
		{"pids", "pids.max", "20"},
	} {
		if got := cgFile(t, c.ctrl, id, c.file); got != c.want {
			t.Errorf("after update: %s = %s, want %s", c.file, got, c.want)
		}
	}
	r.must("update", "--memory", "48m", id)
	if got := cgFile(t, "memory", id, "memory.limit_in_bytes"); got != strconv.Itoa(48<<20) {
		t.Errorf("after update --memory 48m: memory.limit_in_bytes = %s", got)
	}
}

func withHelper(t *testing.T, b *testutil.Bundle) {
	b.CopyFile(t, helperBin, "/helper", 0o755)
}

// TestMemoryLimitOOM: a process allocating past a 32 MiB limit is OOM-killed
// (exit 137) and the runtime reports the OOM.
func TestMemoryLimitOOM(t *testing.T) {
	t.Parallel()
	requireV1(t, "memory")
	limit := func(s *specs.Spec) { s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: i64(32 << 20)} }

	t.Run("run init", func(t *testing.T) {
		t.Parallel()
		r := newRT(t)
		id := r.newID()
		b := r.bundle(id, limit, testutil.Args("/helper", "hog", "200"))
		withHelper(t, b)
		if res := r.run("run", "--bundle", b.Dir, id); res.code != 137 {
			t.Fatalf("want exit 137 (SIGKILL by the OOM killer), got %v", res)
		}
	})

	t.Run("exec with events", func(t *testing.T) {
		t.Parallel()
		r := newRT(t)
		id := r.newID()
		b := r.bundle(id, limit, testutil.Args("sleep", "1000"))
		withHelper(t, b)
		r.must("run", "--detach", "--bundle", b.Dir, id)

		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		ev := exec.CommandContext(ctx, r.bin, "--root", r.root, "events", "--interval", "100ms", id)
		out, err := ev.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := ev.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { cancel(); _ = ev.Wait() }()
		// events reads the OOM-kill count it compares against before its
		// first line: a hog that ran before that count was read would be
		// part of it and never reported. Its first stats event (every
		// 100 ms) says the count is read; a fixed sleep was too short on a
		// loaded machine.
		ready, oom := make(chan struct{}), make(chan struct{})
		go func() {
			sc := bufio.NewScanner(out)
			first := true
			for sc.Scan() {
				if first {
					close(ready)
					first = false
				}
				var e struct{ Type, ID string }
				if json.Unmarshal(sc.Bytes(), &e) == nil && e.Type == "oom" && e.ID == id {
					close(oom)
					break
				}
			}
			for sc.Scan() {
			}
		}()
		select {
		case <-ready:
		case <-ctx.Done():
			t.Fatal("events printed nothing within 30s")
		}

		if res := r.run("exec", id, "/helper", "hog", "200"); res.code != 137 {
			t.Errorf("exec hog: want exit 137, got %v", res)
		}
		select {
		case <-oom:
		case <-time.After(5 * time.Second):
			t.Error("events: no oom event within 5s of the OOM kill")
		}
		if oc := cgFile(t, "memory", id, "memory.oom_control"); !strings.Contains(oc, "oom_kill 1") {
			t.Errorf("memory.oom_control: want oom_kill 1, got\n%s", oc)
		}
		res := r.must("events", "--stats", id)
		var st struct {
			Type string
			Data struct {
				Memory struct {
					Usage struct{ Limit, Failcnt uint64 }
				}
			}
		}
		if err := json.Unmarshal([]byte(res.stdout), &st); err != nil {
			t.Fatalf("events --stats: %v\n%s", err, res.stdout)
		}
		if st.Type != "stats" || st.Data.Memory.Usage.Limit != 32<<20 || st.Data.Memory.Usage.Failcnt == 0 {
			t.Errorf("events --stats: want type stats, memory limit %d and failcnt > 0, got %s", 32<<20, res.stdout)
		}
		if st := r.state(id); st.Status != specs.StateRunning {
			t.Errorf("init (not the hog) was killed: status %s", st.Status)
		}
	})
}

// TestPidsLimit: pids.max stops a fork bomb.
func TestPidsLimit(t *testing.T) {
	t.Parallel()
	requireV1(t, "pids")
	r := newRT(t)
	res := r.runFG(func(s *specs.Spec) {
		s.Linux.Resources.Pids = &specs.LinuxPids{Limit: i64(10)}
	}, testutil.Shell(`n=0; for i in $(seq 50); do sleep 60 & done; wait; echo done`))
	if !strings.Contains(res.stderr, "can't fork") {
		t.Fatalf("want sh to report \"can't fork\" at 10 pids, got %v", res)
	}
}

// TestPauseResume: pause freezes every process (freezer FROZEN, state
// paused); resume thaws them.
func TestPauseResume(t *testing.T) {
	t.Parallel()
	requireV1(t, "freezer")
	r := newRT(t)
	id, _ := r.startDetached()
	r.must("pause", id)
	if st := r.state(id); st.Status != "paused" {
		t.Errorf("after pause: status %q, want paused", st.Status)
	}
	if got := cgFile(t, "freezer", id, "freezer.state"); got != "FROZEN" {
		t.Errorf("after pause: freezer.state = %s, want FROZEN", got)
	}
	pid := strconv.Itoa(r.state(id).Pid)
	if st := readFile(t, "/proc/"+pid+"/stat"); !strings.Contains(st, ") D") && !strings.Contains(st, ") S") {
		t.Logf("frozen init state: %s", st)
	}
	r.must("resume", id)
	if st := r.state(id); st.Status != specs.StateRunning {
		t.Errorf("after resume: status %q, want running", st.Status)
	}
	if got := cgFile(t, "freezer", id, "freezer.state"); got != "THAWED" {
		t.Errorf("after resume: freezer.state = %s, want THAWED", got)
	}
	wantOut(t, r.run("exec", id, "echo", "alive"), "alive")
}
