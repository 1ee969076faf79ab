//go:build linux

package runtime_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/testutil"
)

// TestLifecycle walks one container through create, start, kill and delete,
// checking the state the runtime reports against the kernel at every step.
func TestLifecycle(t *testing.T) {
	t.Parallel()
	r := newRT(t)
	id := r.newID()
	b := r.bundle(id, testutil.Args("sleep", "1000"))
	pidFile := filepath.Join(t.TempDir(), "pid")

	r.must("create", "--bundle", b.Dir, "--pid-file", pidFile, id)
	st := r.state(id)
	if st.Status != specs.StateCreated || st.ID != id || st.Pid <= 0 {
		t.Fatalf("after create: state %+v, want status created with a pid", st)
	}
	if bundle, _ := filepath.Abs(b.Dir); st.Bundle != bundle {
		t.Errorf("state bundle = %q, want %q", st.Bundle, bundle)
	}
	if got := readFile(t, pidFile); got != strconv.Itoa(st.Pid) {
		t.Errorf("pid file = %q, state pid = %d", got, st.Pid)
	}
	// The created container's init exists but has not exec'd the workload.
	if _, err := os.Stat("/proc/" + strconv.Itoa(st.Pid)); err != nil {
		t.Fatalf("init pid %d not alive after create: %v", st.Pid, err)
	}
	cgroup := filepath.Join("/sys/fs/cgroup/memory", cgroupParent, id)
	if procs, err := os.ReadFile(filepath.Join(cgroup, "cgroup.procs")); err != nil || !slices.Contains(strings.Fields(string(procs)), strconv.Itoa(st.Pid)) {
		t.Errorf("init %d not in %s/cgroup.procs (%q, %v)", st.Pid, cgroup, procs, err)
	}

	r.must("start", id)
	st = r.waitStatus(id, specs.StateRunning)
	if comm := readFile(t, "/proc/"+strconv.Itoa(st.Pid)+"/comm"); comm != "sleep" {
		t.Errorf("running init comm = %q, want sleep", comm)
	}
	if res := r.run("start", id); res.code == 0 {
		t.Errorf("second start of a running container succeeded: %v", res)
	}

	r.must("kill", id, "KILL")
	st = r.waitStatus(id, specs.StateStopped)

	r.must("delete", id)
	if res := r.run("state", id); res.code == 0 {
		t.Errorf("state after delete succeeded: %v", res)
	}
	for _, d := range cgroupDirs(cgroupParent + "/" + id) {
		t.Errorf("cgroup %s left behind after delete", d)
	}
	if _, err := os.Stat(filepath.Join(r.root, id)); err == nil {
		t.Errorf("state directory %s left behind after delete", filepath.Join(r.root, id))
	}
}

// TestRunExitCode: `run` exits with the workload's status, 128+n for a signal.
func TestRunExitCode(t *testing.T) {
	t.Parallel()
	noPidNS := func(s *specs.Spec) { testutil.RemoveNamespace(s, specs.PIDNamespace) }
	cases := []struct {
		name   string
		mutate []func(*specs.Spec)
		want   int
	}{
		{"zero", []func(*specs.Spec){testutil.Shell("exit 0")}, 0},
		{"seven", []func(*specs.Spec){testutil.Shell("exit 7")}, 7},
		{"255", []func(*specs.Spec){testutil.Shell("exit 255")}, 255},
		{"command not found", []func(*specs.Spec){testutil.Shell("no-such-command")}, 127},
		// The init of a pid namespace ignores signals it has no handler
		// for, even SIGKILL from inside; without a pid namespace sh can
		// kill itself.
		{"SIGKILL", []func(*specs.Spec){noPidNS, testutil.Shell("kill -KILL $$")}, 128 + 9},
		{"SIGUSR1", []func(*specs.Spec){noPidNS, testutil.Shell("kill -USR1 $$")}, 128 + 10},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newRT(t)
			if res := r.runFG(tc.mutate...); res.code != tc.want {
				t.Fatalf("want exit %d, got %v", tc.want, res)
			}
		})
	}
}

// TestRunKilledFromOutside: `kill <id> KILL` while `run` waits in the
// foreground makes run exit 137.
func TestRunKilledFromOutside(t *testing.T) {
	t.Parallel()
	r := newRT(t)
	id := r.newID()
	b := r.bundle(id, testutil.Args("sleep", "1000"))
	done := make(chan result, 1)
	go func() { done <- r.run("run", "--bundle", b.Dir, id) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if res := r.run("state", id); res.code == 0 && strings.Contains(res.stdout, `"running"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("container never reached running")
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.must("kill", id, "SIGKILL")
	select {
	case res := <-done:
		if res.code != 137 {
			t.Fatalf("want exit 137, got %v", res)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run did not return after the container was killed")
	}
}

// TestRunDetachListPs covers run --detach, list and ps --format json.
func TestRunDetachListPs(t *testing.T) {
	t.Parallel()
	r := newRT(t)
	id, b := r.startDetached()
	st := r.state(id)
	if st.Status != specs.StateRunning {
		t.Fatalf("after run --detach: status %q, want running", st.Status)
	}

	res := r.must("list", "--format", "json")
	var list []struct {
		ID     string `json:"id"`
		Pid    int    `json:"pid"`
		Status string `json:"status"`
		Bundle string `json:"bundle"`
	}
	if err := json.Unmarshal([]byte(res.stdout), &list); err != nil {
		t.Fatalf("list --format json: %v\n%s", err, res.stdout)
	}
	if len(list) != 1 || list[0].ID != id || list[0].Pid != st.Pid || list[0].Status != "running" || list[0].Bundle != b.Dir {
		t.Errorf("list = %+v, want one running %s pid %d bundle %s", list, id, st.Pid, b.Dir)
	}
	if q := r.must("list", "-q"); strings.TrimSpace(q.stdout) != id {
		t.Errorf("list -q = %q, want %q", q.stdout, id)
	}
	if tab := r.must("list"); !strings.Contains(tab.stdout, id) || !strings.Contains(tab.stdout, "running") {
		t.Errorf("list table lacks the container:\n%s", tab.stdout)
	}

	pidFile := filepath.Join(t.TempDir(), "exec.pid")
	r.must("exec", "--detach", "--pid-file", pidFile, id, "sleep", "999")
	execPid, _ := strconv.Atoi(readFile(t, pidFile))
	res = r.must("ps", "--format", "json", id)
	var pids []int
	if err := json.Unmarshal([]byte(res.stdout), &pids); err != nil {
		t.Fatalf("ps --format json: %v\n%s", err, res.stdout)
	}
	slices.Sort(pids)
	want := []int{st.Pid, execPid}
	slices.Sort(want)
	if !slices.Equal(pids, want) {
		t.Errorf("ps --format json = %v, want %v (init and exec'd sleep)", pids, want)
	}
}

// TestDeleteRunningNeedsForce: delete refuses a running container; --force
// kills and deletes it.
func TestDeleteRunningNeedsForce(t *testing.T) {
	t.Parallel()
	r := newRT(t)
	id, _ := r.startDetached()
	pid := r.state(id).Pid
	res := r.run("delete", id)
	if res.code == 0 {
		t.Fatalf("delete of a running container succeeded: %v", res)
	}
	if !strings.Contains(strings.ToLower(res.stderr), "running") {
		t.Errorf("delete error does not say the container is running: %q", res.stderr)
	}
	if st := r.state(id); st.Status != specs.StateRunning {
		t.Fatalf("after refused delete: status %q, want running", st.Status)
	}
	r.must("delete", "--force", id)
	deadline := time.Now().Add(5 * time.Second)
	for {
		data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil || strings.Contains(string(data), ") Z") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("init %d still alive after delete --force", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if res := r.run("state", id); res.code == 0 {
		t.Errorf("state after delete --force succeeded: %v", res)
	}
}

// TestNonexistentContainer: verbs on an unknown id fail with a clear message.
func TestNonexistentContainer(t *testing.T) {
	t.Parallel()
	r := newRT(t)
	for _, args := range [][]string{
		{"start", "no-such-container"},
		{"state", "no-such-container"},
		{"kill", "no-such-container", "KILL"},
		{"exec", "no-such-container", "true"},
		{"delete", "no-such-container"},
	} {
		res := r.run(args...)
		if res.code == 0 {
			t.Errorf("%v", res)
			continue
		}
		if !strings.Contains(res.stderr, "no-such-container") || !strings.Contains(res.stderr, "does not exist") {
			t.Errorf("want an error naming the container and saying it does not exist, got %v", res)
		}
	}
}
