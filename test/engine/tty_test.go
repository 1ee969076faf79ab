//go:build linux

package engine_test

import (
	"bytes"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPty opens a pseudo-terminal pair by hand (/dev/ptmx, unlock, number).
func openPty(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_ = unix.IoctlSetWinsize(int(m.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 24, Col: 80})
	t.Cleanup(func() { m.Close(); s.Close() })
	return m, s
}

// ptyBuf collects what the terminal shows.
type ptyBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (p *ptyBuf) String() string { p.mu.Lock(); defer p.mu.Unlock(); return p.buf.String() }

// startOnPty runs berth with the pty as its controlling terminal.
func (e *env) startOnPty(t *testing.T, args ...string) (*exec.Cmd, *os.File, *ptyBuf) {
	m, s := openPty(t)
	c := e.cmd(args...)
	c.Stdin, c.Stdout, c.Stderr = s, s, s
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	out := &ptyBuf{}
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := m.Read(b)
			out.mu.Lock()
			out.buf.Write(b[:n])
			out.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return c, m, out
}

// waitCode waits up to d for berth (started by startOnPty, its terminal
// shown in out) to exit and returns its exit code. A berth that hangs is
// sent SIGQUIT first: the Go runtime then prints every goroutine's stack
// on the terminal, which the failure shows.
func waitCode(t *testing.T, c *exec.Cmd, out *ptyBuf, d time.Duration) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case err := <-done:
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(d):
		_ = c.Process.Signal(syscall.SIGQUIT)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = c.Process.Kill()
			<-done
		}
		// The reader of the terminal may lag behind the dump (which a
		// berth stuck outside Go code never prints).
		for end := time.Now().Add(2 * time.Second); !strings.Contains(out.String(), "goroutine ") && time.Now().Before(end); {
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("berth did not exit within %s; terminal:\n%s", d, out.String())
		return -1
	}
}

// typeUntil writes input (again every second) until the screen shows want.
func typeUntil(t *testing.T, m *os.File, out *ptyBuf, input, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	next := time.Now()
	for !strings.Contains(out.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("terminal never showed %q; screen:\n%s", want, out.String())
		}
		if input != "" && time.Now().After(next) {
			if _, err := m.Write([]byte(input)); err != nil {
				t.Fatal(err)
			}
			next = time.Now().Add(time.Second)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// foregroundChild reports whether a child of pid named comm is the
// foreground process group of its controlling terminal (in /proc/PID/stat,
// its pgrp equals the terminal's tpgid).
func foregroundChild(pid int, comm string) bool {
	ents, _ := os.ReadDir("/proc")
	for _, ent := range ents {
		b, err := os.ReadFile("/proc/" + ent.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp session tty_nr tpgid ...; comm may
		// hold spaces and parentheses, so split after its last ')'.
		open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
		if open < 0 || end < open {
			continue
		}
		f := strings.Fields(string(b[end+1:]))
		if len(f) < 6 || string(b[open+1:end]) != comm || f[1] != strconv.Itoa(pid) {
			continue
		}
		if f[2] == f[5] {
			return true
		}
	}
	return false
}

func TestRunInteractiveTerminal(t *testing.T) {
	e := newEnv(t)
	c, m, out := e.startOnPty(t, "run", "-it", "--name", "tty", "busybox", "sh")
	// Arithmetic shows the shell ran it (the echo of the typed line does not contain 42).
	typeUntil(t, m, out, "echo $((6*7))\r", "42")
	typeUntil(t, m, out, "tty\r", "/dev/pts/")
	// Window size: resizing our terminal sends SIGWINCH to berth, which
	// forwards the size to the container's terminal.
	if err := unix.IoctlSetWinsize(int(m.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 33, Col: 111}); err != nil {
		t.Fatal(err)
	}
	typeUntil(t, m, out, "stty size\r", "33 111")
	// ctrl-c reaches the container's foreground job, not berth.
	if _, err := m.Write([]byte("sleep 30\r")); err != nil {
		t.Fatal(err)
	}
	// A ctrl-c that comes before the shell has made sleep the terminal's
	// foreground job goes to the shell, which drops it, and sleep runs its
	// 30 s: wait until sleep is in the foreground (a fixed 300 ms was not
	// always enough on a loaded machine).
	shell, err := strconv.Atoi(strings.TrimSpace(e.ok("inspect", "-f", "{{.State.Pid}}", "tty")))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "sleep 30 to be the terminal's foreground job", func() bool { return foregroundChild(shell, "sleep") })
	if _, err := m.Write([]byte{3}); err != nil {
		t.Fatal(err)
	}
	typeUntil(t, m, out, "echo alive-$((1+1))\r", "alive-2")
	if _, err := m.Write([]byte("exit 7\r")); err != nil {
		t.Fatal(err)
	}
	if code := waitCode(t, c, out, 10*time.Second); code != 7 {
		t.Fatalf("run -it exit %d, want 7; screen:\n%s", code, out.String())
	}
}

func TestDetachAndAttach(t *testing.T) {
	e := newEnv(t)
	c, m, out := e.startOnPty(t, "run", "-it", "--name", "det", "busybox", "sh")
	typeUntil(t, m, out, "echo first-$((2+3))\r", "first-5")
	// ctrl-p ctrl-q detaches: berth exits 0, the container keeps running.
	if _, err := m.Write([]byte{0x10, 0x11}); err != nil {
		t.Fatal(err)
	}
	if code := waitCode(t, c, out, 10*time.Second); code != 0 {
		t.Fatalf("detach: exit %d; terminal:\n%s", code, out.String())
	}
	if st := strings.TrimSpace(e.ok("inspect", "-f", "{{.State.Status}}", "det")); st != "running" {
		t.Fatalf("after detach: %s", st)
	}
	c2, m2, out2 := e.startOnPty(t, "attach", "det")
	typeUntil(t, m2, out2, "echo again-$((3+4))\r", "again-7")
	if _, err := m2.Write([]byte("exit 3\r")); err != nil {
		t.Fatal(err)
	}
	if code := waitCode(t, c2, out2, 10*time.Second); code != 3 {
		t.Fatalf("attach: exit %d, want 3; terminal:\n%s", code, out2.String())
	}
	if got := strings.TrimSpace(e.ok("wait", "det")); got != "3" {
		t.Errorf("wait: %s", got)
	}
}
