package monitor

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/testutil"
)

func TestStartAndExit(t *testing.T) {
	for _, tc := range []struct {
		name      string
		args      []string
		wantReady string // prefix of the ready line
		kill      string // signal the test sends through the runtime
		wantCode  int
	}{
		{"exit code", []string{"sh", "-c", "exit 3"}, "ok ", "", 3},
		{"success", []string{"true"}, "ok ", "", 0},
		{"killed by signal", []string{"sleep", "1000"}, "ok ", "KILL", 128 + 9},
		{"missing executable", []string{"no-such-binary"}, "error ", "", 127},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, ready := startMonitor(t, nil, testutil.Args(tc.args...))
			if !strings.HasPrefix(ready, tc.wantReady) {
				t.Fatalf("ready line %q, want prefix %q", ready, tc.wantReady)
			}
			if tc.wantReady == "error " {
				if !strings.Contains(ready, "executable file not found") {
					t.Errorf("ready line %q does not name the cause", ready)
				}
			} else if pid, err := strconv.Atoi(strings.TrimPrefix(ready, "ok ")); err != nil || pid <= 0 {
				t.Errorf("ready line %q: no pid", ready)
			}
			if tc.kill != "" {
				if out, err := c.runtime("kill", c.id, tc.kill); err != nil {
					t.Fatalf("kill: %v: %s", err, out)
				}
			}
			c.waitExit(15 * time.Second)
			s := c.state()
			if s.Status != "exited" || s.ExitCode != tc.wantCode || s.Pid != 0 {
				t.Errorf("state %+v, want exited with %d", s, tc.wantCode)
			}
			for _, f := range []string{AttachSock, ControlSock} {
				if _, err := os.Stat(c.path(f)); err == nil {
					t.Errorf("%s left behind", f)
				}
			}
			if out, err := c.runtime("state", c.id); err == nil {
				t.Errorf("container not deleted: %s", out)
			}
		})
	}
}

func TestLogs(t *testing.T) {
	long := strings.Repeat("x", 40000)
	c, ready := startMonitor(t, nil, testutil.Shell(`echo out; echo err >&2; printf '`+long+`\n'; printf tail`))
	if !strings.HasPrefix(ready, "ok ") {
		t.Fatal(ready)
	}
	c.waitExit(15 * time.Second)
	var got []string
	for _, e := range readLog(t, c.logPath) {
		if e.Time.IsZero() {
			t.Errorf("entry without time: %+v", e)
		}
		got = append(got, e.Stream+":"+strconv.Itoa(len(e.Log))+":"+strings.TrimLeft(e.Log, "x"))
	}
	// stdout and stderr are separate pipes: only the order within a
	// stream is defined.
	want := map[string]bool{"stdout:4:out\n": true, "stderr:4:err\n": true}
	var stdout []string
	for _, g := range got {
		if want[g] {
			delete(want, g)
			continue
		}
		stdout = append(stdout, g)
	}
	if len(want) != 0 {
		t.Errorf("missing %v in %q", want, got)
	}
	// 40000 x's: two partial 16 KiB entries without "\n", then the rest.
	wantOut := []string{"stdout:16384:", "stdout:16384:", "stdout:7233:\n", "stdout:4:tail"}
	if strings.Join(stdout, "|") != strings.Join(wantOut, "|") {
		t.Errorf("stdout entries %q, want %q", stdout, wantOut)
	}
}

func TestLogRotation(t *testing.T) {
	const lines = 300
	c, _ := startMonitor(t, []string{"--log-max-size", "2000", "--log-max-file", "3"},
		testutil.Shell(fmt.Sprintf(`i=0; while [ $i -lt %d ]; do echo line-$i; i=$((i+1)); done`, lines)))
	c.waitExit(15 * time.Second)
	if _, err := os.Stat(c.logPath + ".3"); err == nil {
		t.Error("more files than --log-max-file")
	}
	var all []logEntry
	for _, p := range []string{c.logPath + ".2", c.logPath + ".1", c.logPath} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatalf("rotated file: %v", err)
		}
		if fi.Size() > 2000+200 {
			t.Errorf("%s is %d bytes, max-size 2000", p, fi.Size())
		}
		all = append(all, readLog(t, p)...)
	}
	// The kept files hold the last lines, each exactly once, in order.
	first, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(all[0].Log, "line-"), "\n"))
	if err != nil {
		t.Fatal(all[0])
	}
	for i, e := range all {
		if want := fmt.Sprintf("line-%d\n", first+i); e.Log != want {
			t.Fatalf("entry %d is %q, want %q", i, e.Log, want)
		}
	}
	if first+len(all) != lines {
		t.Errorf("last line is %d, want %d", first+len(all)-1, lines-1)
	}
}

func TestAttachStdin(t *testing.T) {
	c, ready := startMonitor(t, []string{"--stdin", "--attach-wait"},
		testutil.Shell(`read line; echo "got $line"; cat; echo err >&2`))
	if ready != "attach" {
		t.Fatalf("ready line %q, want attach", ready)
	}
	conn, err := dialUnix(c.path(AttachSock))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if ready := c.readyLine(); !strings.HasPrefix(ready, "ok ") {
		t.Fatal(ready)
	}
	if _, err := io.WriteString(conn, "hello\nrest\n"); err != nil {
		t.Fatal(err)
	}
	// Half-close: the container's stdin reaches EOF (cat ends), and the
	// connection still carries its output until it exits.
	if err := shutdownWrite(conn); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	stdout, stderr, err := readFrames(conn)
	if err != nil {
		t.Fatal(err)
	}
	if stdout != "got hello\nrest\n" || stderr != "err\n" {
		t.Errorf("stdout %q stderr %q", stdout, stderr)
	}
	c.waitExit(15 * time.Second)
	if s := c.state(); s.ExitCode != 0 {
		t.Errorf("exit code %d", s.ExitCode)
	}
}

func TestTTYResize(t *testing.T) {
	c, ready := startMonitor(t, []string{"--tty", "--stdin", "--attach-wait"},
		func(s *specs.Spec) { s.Process.Terminal = true },
		testutil.Shell(`read x; stty size; exit 7`))
	if ready != "attach" {
		t.Fatalf("ready line %q", ready)
	}
	conn, err := dialUnix(c.path(AttachSock))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if ready := c.readyLine(); !strings.HasPrefix(ready, "ok ") {
		t.Fatal(ready)
	}
	var rep Reply
	c.control(Request{Op: "resize", Height: 42, Width: 123}, &rep)
	if rep.Error != "" {
		t.Fatal(rep.Error)
	}
	if _, err := io.WriteString(conn, "go\n"); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	out, _ := io.ReadAll(conn) // raw bytes, no framing; ends when the container exits
	if !strings.Contains(string(out), "42 123\r\n") {
		t.Errorf("tty output %q lacks the new size", out)
	}
	c.waitExit(15 * time.Second)
	if s := c.state(); s.ExitCode != 7 {
		t.Errorf("exit code %d", s.ExitCode)
	}
	if !strings.Contains(strings.Join(logLines(t, c.logPath), ""), "42 123") {
		t.Error("tty output not in the log")
	}
}

func TestRestartPolicy(t *testing.T) {
	for _, tc := range []struct {
		name      string
		policy    string
		script    string
		wantCount int
		wantCode  int
	}{
		{"on-failure:2 gives up after two restarts", "on-failure:2", "exit 1", 2, 1},
		{"on-failure does not restart a success", "on-failure", "exit 0", 0, 0},
		{"no never restarts", "no", "exit 1", 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, ready := startMonitor(t, []string{"--restart", tc.policy}, testutil.Shell(tc.script))
			if !strings.HasPrefix(ready, "ok ") {
				t.Fatal(ready)
			}
			c.waitExit(20 * time.Second)
			s := c.state()
			if s.Status != "exited" || s.RestartCount != tc.wantCount || s.ExitCode != tc.wantCode {
				t.Errorf("state %+v, want %d restarts, exit %d", s, tc.wantCount, tc.wantCode)
			}
			if n := len(logLines(t, c.logPath)); n != 0 {
				t.Logf("%d log lines", n)
			}
		})
	}
}

func TestUserStopDoesNotRestart(t *testing.T) {
	c, ready := startMonitor(t, []string{"--restart", "always"}, testutil.Args("sleep", "1000"))
	if !strings.HasPrefix(ready, "ok ") {
		t.Fatal(ready)
	}
	var rep Reply
	c.control(Request{Op: "stop"}, &rep)
	if rep.Error != "" {
		t.Fatal(rep.Error)
	}
	var s State
	c.control(Request{Op: "state"}, &s)
	if !s.UserStopped || s.Status != "running" {
		t.Fatalf("state after stop request: %+v", s)
	}
	if out, err := c.runtime("kill", c.id, "KILL"); err != nil {
		t.Fatalf("kill: %v: %s", err, out)
	}
	c.waitExit(15 * time.Second)
	s = c.state()
	if s.Status != "exited" || s.RestartCount != 0 || s.ExitCode != 137 {
		t.Errorf("state %+v, want exited 137 without restart", s)
	}
}

func TestRestartAlwaysThenStop(t *testing.T) {
	c, _ := startMonitor(t, []string{"--restart", "always"}, testutil.Shell("sleep 0.2; exit 2"))
	c.waitState("two restarts", 20*time.Second, func(s State) bool { return s.RestartCount >= 2 })
	var rep Reply
	c.control(Request{Op: "stop"}, &rep)
	c.waitExit(20 * time.Second)
	if s := c.state(); s.Status != "exited" || !s.UserStopped || s.ExitCode != 2 {
		t.Errorf("state %+v, want exited 2 after a user stop", s)
	}
}

func TestHealthCheck(t *testing.T) {
	for _, tc := range []struct {
		name       string
		test       []string
		wantStatus string
	}{
		{"healthy", []string{"CMD-SHELL", "test -e /bin/sh && echo fine"}, HealthHealthy},
		{"unhealthy", []string{"CMD", "false"}, HealthUnhealthy},
		{"timeout", []string{"CMD", "sleep", "10"}, HealthUnhealthy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hc := HealthConfig{Test: tc.test, Interval: 200 * time.Millisecond, Timeout: 500 * time.Millisecond, Retries: 2}
			data, _ := json.Marshal(hc)
			hf := filepath.Join(t.TempDir(), "health.json")
			if err := os.WriteFile(hf, data, 0o644); err != nil {
				t.Fatal(err)
			}
			c, ready := startMonitor(t, []string{"--health", hf}, testutil.Args("sleep", "1000"))
			if !strings.HasPrefix(ready, "ok ") {
				t.Fatal(ready)
			}
			if s := c.state(); s.Health == nil || s.Health.Status != HealthStarting {
				t.Errorf("health at start: %+v", s.Health)
			}
			s := c.waitState("health "+tc.wantStatus, 20*time.Second, func(s State) bool {
				return s.Health != nil && s.Health.Status == tc.wantStatus
			})
			last := s.Health.Log[len(s.Health.Log)-1]
			switch tc.name {
			case "healthy":
				if last.ExitCode != 0 || last.Output != "fine\n" || s.Health.FailingStreak != 0 {
					t.Errorf("health %+v", s.Health)
				}
			case "unhealthy":
				if last.ExitCode != 1 || s.Health.FailingStreak < 2 {
					t.Errorf("health %+v", s.Health)
				}
			case "timeout":
				if last.ExitCode != -1 || !strings.Contains(last.Output, "exceeded timeout") {
					t.Errorf("health %+v", s.Health)
				}
			}
			if tc.name == "unhealthy" {
				s = c.waitState("six probes", 20*time.Second, func(s State) bool { return s.Health.FailingStreak >= 6 })
				if len(s.Health.Log) != maxHealthLog {
					t.Errorf("%d log entries kept, want %d", len(s.Health.Log), maxHealthLog)
				}
			}
		})
	}
}

func TestOOMKilled(t *testing.T) {
	limit := int64(32 << 20)
	c, ready := startMonitor(t, nil, func(s *specs.Spec) {
		s.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit, Swap: &limit}}
	}, testutil.Args("tail", "/dev/zero")) // no newline ever: tail's buffer grows without bound
	if !strings.HasPrefix(ready, "ok ") {
		t.Fatal(ready)
	}
	c.waitExit(30 * time.Second)
	if s := c.state(); !s.OOMKilled || s.ExitCode != 137 {
		t.Errorf("state %+v, want OOMKilled and 137", s)
	}
}

func TestMonitorKilledContainerSurvives(t *testing.T) {
	c, ready := startMonitor(t, nil, testutil.Args("sleep", "1000"))
	if !strings.HasPrefix(ready, "ok ") {
		t.Fatal(ready)
	}
	pid, _ := strconv.Atoi(strings.TrimPrefix(ready, "ok "))
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	c.waitExit(10 * time.Second)
	time.Sleep(200 * time.Millisecond)
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("container init %d gone after the monitor was killed: %v", pid, err)
	}
	out, err := c.runtime("state", c.id)
	if err != nil || !strings.Contains(out, `"running"`) {
		t.Errorf("runtime state: %v: %s", err, out)
	}
}

// TestIdleRSS measures what an idle container costs in monitor memory
// (conmon, podman's monitor, is about 2.1 MB here) and guards against
// regressions. Run with -v to see the numbers.
func TestIdleRSS(t *testing.T) {
	const containers = 5
	var pids []int
	for range containers {
		c, ready := startMonitor(t, nil, testutil.Args("sleep", "1000"))
		if !strings.HasPrefix(ready, "ok ") {
			t.Fatal(ready)
		}
		pids = append(pids, c.cmd.Process.Pid)
	}
	time.Sleep(2 * time.Second) // past the post-start trim
	for i, pid := range pids {
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			t.Fatal(err)
		}
		rollup, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
		if err != nil {
			t.Fatal(err)
		}
		field := func(data []byte, name string) int {
			for _, l := range strings.Split(string(data), "\n") {
				if k, v, ok := strings.Cut(l, ":"); ok && k == name {
					n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
					return n
				}
			}
			return -1
		}
		rss, anon, file, pss := field(status, "VmRSS"), field(status, "RssAnon"), field(status, "RssFile"), field(rollup, "Pss")
		t.Logf("monitor %d: VmRSS %d kB (anon %d, file %d), Pss %d kB, threads %d", i, rss, anon, file, pss, field(status, "Threads"))
		if rss > 3072 || anon > 1536 {
			t.Errorf("idle monitor uses %d kB (anon %d kB)", rss, anon)
		}
	}
}
