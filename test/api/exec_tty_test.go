//go:build linux

package api_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestCLIExecTerminal runs `berth --host … exec -it` on a pty, as a user
// at a terminal would: the exec starts at the terminal's size and follows
// it when the terminal is resized (SIGWINCH → POST /exec/{id}/resize).
func TestCLIExecTerminal(t *testing.T) {
	d := startDaemon(t)
	d.loadBusybox()
	d.ok("run", "-d", "--name", "tty", "busybox", "sleep", "1000")

	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	r, _, errno := unix.Syscall(unix.SYS_IOCTL, master.Fd(), unix.TIOCGPTPEER, unix.O_RDWR|unix.O_NOCTTY)
	if errno != 0 {
		t.Fatal(errno)
	}
	fd := int(r)
	slave := os.NewFile(uintptr(fd), "pty-slave")
	defer slave.Close()
	setSize := func(rows, cols uint16) {
		if err := unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols}); err != nil {
			t.Fatal(err)
		}
	}
	setSize(23, 77)

	c := exec.Command(filepath.Join(binDir, "berth"), "--host", d.host(), "exec", "-it", "tty", "sh", "-c", "stty size; while read x; do stty size; done")
	c.Stdin, c.Stdout, c.Stderr = slave, slave, slave
	// Our pty becomes berth's controlling terminal, so that its resize
	// reaches berth as SIGWINCH, as a terminal emulator's would.
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = c.Process.Kill()
		_ = c.Wait()
	}()
	out := readTerminal(master)
	out.waitFor(t, d, master, "\r", "23 77")
	setSize(31, 93)
	out.waitFor(t, d, master, "\r", "31 93")
}
