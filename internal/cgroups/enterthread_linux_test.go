package cgroups

import (
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A thread that enters the cgroup forks children into it, and steps back
// out to exactly where it was.
func TestIntegrationEnterThread(t *testing.T) {
	m := testManager(t)
	if err := m.Prepare(); err != nil {
		t.Fatal(err)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	before, err := os.ReadFile("/proc/thread-self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	leave, fd, err := m.EnterThread()
	if err != nil {
		t.Fatal(err)
	}
	entered := time.Since(start)
	cmd := exec.Command("/bin/sleep", "5")
	if fd >= 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}
	}
	err = cmd.Start()
	if fd >= 0 {
		_ = os.NewFile(uintptr(fd), "cgroup").Close()
	}
	lerr := leave()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	if lerr != nil {
		t.Fatalf("leave: %v", lerr)
	}
	after, err := os.ReadFile("/proc/thread-self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	if string(after) != string(before) {
		t.Errorf("thread did not return to its cgroups:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	child, err := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(child)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 || strings.HasPrefix(parts[1], "name=") {
			continue // hierarchies berth does not manage
		}
		if parts[2] != m.Path() {
			t.Errorf("child is in %q for %q, want %s", parts[2], parts[1], m.Path())
		}
	}
	pids, err := m.Pids()
	if err != nil {
		t.Fatal(err)
	}
	if len(pids) != 1 || pids[0] != cmd.Process.Pid {
		t.Errorf("cgroup holds %v, want only the child %d (the thread must have left)", pids, cmd.Process.Pid)
	}
	t.Logf("entering the cgroup took %v", entered)
}
