package engine

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/monitor"
)

// alive reports whether pid names a live (not zombie) process. A pidfd is
// used rather than kill(pid, 0) because kill succeeds on a zombie: a
// monitor that exited but that our own process has not reaped yet (berthd
// starts monitors as children) must count as dead.
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		// ENOSYS on old kernels: fall back to kill(pid, 0).
		if errors.Is(err, unix.ENOSYS) {
			return unix.Kill(pid, 0) == nil || errors.Is(unix.Kill(pid, 0), unix.EPERM)
		}
		return false
	}
	defer unix.Close(fd)
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	n, _ := unix.Poll(fds, 0)
	return n == 0
}

// waitExit blocks until pid exits or d passes; it reports whether the
// process is gone. A pidfd becomes readable when its process exits, so
// this costs no polling loop.
func waitExit(pid int, d time.Duration) bool {
	if pid <= 0 {
		return true
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		if errors.Is(err, unix.ENOSYS) {
			time.Sleep(min(d, 20*time.Millisecond))
			return !alive(pid)
		}
		return true
	}
	defer unix.Close(fd)
	ms := int(d / time.Millisecond)
	if d < 0 {
		ms = -1
	}
	for {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, ms)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		return n > 0
	}
}

// stateWatch wakes a waiter when the monitor records an exit: a control
// "wait" request (internal/monitor) that the monitor answers then, or
// that ends when the monitor dies. A waiter learns of an exit the moment it
// is recorded, without polling, and before the monitor runs an exit
// command (`rm` for --rm) that would take the state away. (inotify on the
// bundle would do too, but closing an inotify instance waits for an SRCU
// grace period: 10-20 ms on every wait.)
type stateWatch struct {
	e    *Engine
	id   string
	conn net.Conn      // nil once there is no monitor to ask
	done chan struct{} // closed when the reply (or EOF) came
	// reply is what the monitor answered on conn, complete once done is
	// closed; exit is the last exit a reply announced.
	reply *[]byte
	exit  *monitor.State
}

// watchState arms a watch of id's monitor; nil when there is no monitor to
// ask (waits then fall back to the process and the timeout).
func (e *Engine) watchState(id string) *stateWatch {
	w := &stateWatch{e: e, id: id}
	if !w.arm() {
		return nil
	}
	return w
}

func (w *stateWatch) arm() bool {
	conn, err := dialUnix(filepath.Join(w.e.bundleDir(w.id), "control.sock"), time.Second)
	if err != nil {
		return false
	}
	if _, err := conn.Write([]byte(`{"op":"wait"}` + "\n")); err != nil {
		conn.Close()
		return false
	}
	reply := new([]byte)
	w.conn, w.done, w.reply = conn, make(chan struct{}), reply
	go func(conn net.Conn, done chan struct{}) {
		// The reply (one line of state), then EOF.
		*reply, _ = io.ReadAll(io.LimitReader(conn, 64<<10))
		_, _ = io.Copy(io.Discard, conn)
		close(done)
	}(conn, w.done)
	return true
}

// collect keeps the exit a finished reply announced.
func (w *stateWatch) collect() {
	var st monitor.State
	if json.Unmarshal(bytes.TrimSpace(*w.reply), &st) == nil && st.Status == "exited" {
		w.exit = &st
	}
}

// exited returns the exit the monitor announced to this watch, if any. It
// is the waiter's own record of the exit: the monitor answers before it
// runs the exit command, and for --rm that command removes monitor.json
// and the container record, which a waiter may then find gone or half gone.
func (w *stateWatch) exited() (monitor.State, bool) {
	if w == nil {
		return monitor.State{}, false
	}
	if w.conn != nil {
		select {
		case <-w.done:
			w.collect()
		default:
		}
	}
	if w.exit == nil {
		return monitor.State{}, false
	}
	return *w.exit, true
}

func (w *stateWatch) close() {
	if w != nil && w.conn != nil {
		w.conn.Close()
	}
}

// wait blocks until an exit is recorded, pid exits, or d passes. A watch
// that fired is armed again for the next wait.
func (w *stateWatch) wait(pid int, d time.Duration) {
	if w == nil || w.conn == nil {
		// No monitor to ask, from the start or since it went away (its
		// done channel stays closed: selecting on it would spin).
		waitExit(pid, d)
		return
	}
	select {
	case <-w.done:
		w.collect()
		w.conn.Close()
		if !w.arm() {
			w.conn = nil
			waitExit(pid, d)
		}
		return
	default:
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-w.done:
	case <-t.C:
	}
}

// findMonitorProc finds the berth-monitor serving bundle by its command
// line (0 when there is none): the one trace of a monitor forked by a CLI
// killed before it could record the pid.
func findMonitorProc(bundle string) int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
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
		if filepath.Base(args[0]) != "berth-monitor" {
			continue
		}
		for i := 1; i+1 < len(args); i++ {
			if args[i] == "--bundle" && args[i+1] == bundle && alive(pid) {
				return pid
			}
		}
	}
	return 0
}
