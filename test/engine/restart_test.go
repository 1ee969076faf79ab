//go:build linux

package engine_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// monitorsOf lists the berth-monitor processes serving this instance.
func monitorsOf(t *testing.T, state string) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if filepath.Base(args[0]) == "berth-monitor" && strings.Contains(string(b), state) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// TestMonitorsKilled: 20 containers started at once by separate berth
// processes; every monitor killed with SIGKILL; the containers still show
// as running with their real uptime, logs and stop work, and the exit
// codes are what Docker reports for a container whose supervisor died.
func TestMonitorsKilled(t *testing.T) {
	e := newEnv(t)
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			out, errOut, code := e.run(nil, "run", "-d", "--name", fmt.Sprintf("c%d", i), "busybox",
				"sh", "-c", fmt.Sprintf("echo hello-%d; while true; do sleep 0.2; done", i))
			if code != 0 || len(strings.TrimSpace(out)) != 64 {
				errs <- fmt.Errorf("run c%d: exit %d %q %q", i, code, out, errOut)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}
	if got := strings.Fields(e.ok("ps", "-q")); len(got) != n {
		t.Fatalf("ps lists %d running containers, want %d", len(got), n)
	}
	time.Sleep(2 * time.Second)
	mons := monitorsOf(t, e.state)
	if len(mons) != n {
		t.Fatalf("%d monitors, want %d", len(mons), n)
	}
	for _, pid := range mons {
		_ = unix.Kill(pid, unix.SIGKILL)
	}
	eventually(t, 5*time.Second, "monitors gone", func() bool { return len(monitorsOf(t, e.state)) == 0 })

	out := e.ok("ps", "--format", "{{.Names}}|{{.Status}}")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != n {
		t.Fatalf("after killing the monitors ps lists %d running:\n%s", len(lines), out)
	}
	for _, l := range lines {
		_, status, _ := strings.Cut(l, "|")
		// Started more than 2 s ago: the uptime is the container's, not
		// the time of the monitor's death.
		if !strings.HasPrefix(status, "Up ") || strings.Contains(status, "Less than") || status == "Up 1 second" {
			t.Errorf("status %q", status)
		}
	}
	if got := e.ok("logs", "c7"); got != "hello-7\n" {
		t.Errorf("logs after the monitor died: %q", got)
	}
	e.ok("stop", "-t", "1", "c3")
	if got := strings.TrimSpace(e.ok("wait", "c3")); got != "137" {
		t.Errorf("exit code of a container stopped without its monitor: %s", got)
	}
	if got := strings.TrimSpace(e.ok("inspect", "-f", "{{.State.Status}} {{.State.Running}} {{.State.Pid}}", "c3")); got != "exited false 0" {
		t.Errorf("inspect after stop: %q", got)
	}
	// A restart brings a new monitor.
	e.ok("start", "c3")
	if len(monitorsOf(t, e.state)) != 1 {
		t.Errorf("start did not bring a monitor")
	}
	// rm -f of containers without monitors leaves no mount or process.
	for i := 0; i < n; i++ {
		e.ok("rm", "-f", fmt.Sprintf("c%d", i))
	}
	b, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(b), e.state) {
		t.Errorf("mounts left under %s", e.state)
	}
	if left := strings.TrimSpace(e.ok("ps", "-aq")); left != "" {
		t.Errorf("containers left: %q", left)
	}
}
