package api

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// execTerminal is the terminal an API exec with Tty gives berth-runtime as
// its stdin, so that a remote client can resize it. Locally, `berth exec
// -t` hands the runtime the user's terminal: the runtime sizes the
// container's pty from its stdin and follows it on SIGWINCH. Over the API
// the client's terminal is far away, so the server stands in for it: the
// runtime's stdin is the slave of a pty we hold, the client's input is
// written to its master, and POST /exec/{id}/resize sets the slave's size
// and sends the runtime the SIGWINCH a terminal would. The kernel sends
// that signal only to a terminal's foreground process group, which a pty
// that is nobody's controlling terminal does not have, so we send it.
type execTerminal struct {
	master, slave *os.File

	mu  sync.Mutex
	pid int // the runtime process reading the slave, once found
}

// newExecTerminal opens a pty in raw mode (no echo, no line editing: the
// bytes the client sends are the bytes the container's terminal gets) of
// height rows and width columns (0 leaves the kernel's default).
func newExecTerminal(height, width uint) (_ *execTerminal, retErr error) {
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("exec terminal: %w", err)
	}
	defer func() {
		if retErr != nil {
			master.Close()
		}
	}()
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		return nil, fmt.Errorf("exec terminal: unlock pty: %w", err)
	}
	// TIOCGPTPEER opens the slave through the master, not by a /dev/pts
	// path that another devpts mount could shadow. Its argument is the
	// slave's open flags: close-on-exec, so that only the runtime we start
	// inherits it (as its stdin).
	r, _, errno := unix.Syscall(unix.SYS_IOCTL, master.Fd(), unix.TIOCGPTPEER, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC)
	if errno != 0 {
		return nil, fmt.Errorf("exec terminal: open pty slave: %w", errno)
	}
	fd := int(r)
	slave := os.NewFile(uintptr(fd), "pty-slave")
	if _, err := term.MakeRaw(fd); err != nil {
		slave.Close()
		return nil, fmt.Errorf("exec terminal: raw mode: %w", err)
	}
	t := &execTerminal{master: master, slave: slave}
	if height > 0 && width > 0 {
		if err := t.setSize(height, width); err != nil {
			slave.Close()
			return nil, err
		}
	}
	return t, nil
}

func (t *execTerminal) setSize(height, width uint) error {
	ws := &unix.Winsize{Row: uint16(height), Col: uint16(width)}
	if err := unix.IoctlSetWinsize(int(t.slave.Fd()), unix.TIOCSWINSZ, ws); err != nil {
		return fmt.Errorf("resize exec terminal: %w", err)
	}
	return nil
}

// stdin is what the runtime reads; input is where the client's bytes go.
func (t *execTerminal) stdin() *os.File { return t.slave }
func (t *execTerminal) input() *os.File { return t.master }

// resize sets the terminal's size and tells the runtime, which copies it
// to the container's pty. Before the runtime has started the size is
// simply there for it to read.
func (t *execTerminal) resize(height, width uint) error {
	if err := t.setSize(height, width); err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.pid == 0 {
		t.pid = t.reader()
	}
	if t.pid != 0 {
		if err := unix.Kill(t.pid, unix.SIGWINCH); err != nil && err != unix.ESRCH {
			return fmt.Errorf("resize exec terminal: signal runtime %d: %w", t.pid, err)
		}
	}
	return nil
}

// reader finds our child process whose stdin is the slave (the runtime
// the engine started for this exec); 0 when there is none yet. The engine
// starts the runtime without telling us its pid, and the pty is the one
// thing that names it unambiguously.
func (t *execTerminal) reader() int {
	var want unix.Stat_t
	if err := unix.Fstat(int(t.slave.Fd()), &want); err != nil {
		return 0
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	self := os.Getpid()
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || parentOf(pid) != self {
			continue
		}
		var st unix.Stat_t
		if unix.Stat("/proc/"+e.Name()+"/fd/0", &st) == nil && st.Rdev == want.Rdev && st.Mode&unix.S_IFMT == unix.S_IFCHR {
			return pid
		}
	}
	return 0
}

// parentOf reads a process's parent pid from /proc/PID/stat (the field
// after the command name, which may itself hold spaces and parentheses).
func parentOf(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b[i+1:]))
	sc.Split(bufio.ScanWords)
	var f []string
	for sc.Scan() && len(f) < 2 {
		f = append(f, sc.Text())
	}
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

func (t *execTerminal) close() {
	t.master.Close()
	t.slave.Close()
}
