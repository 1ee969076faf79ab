package monitor

import (
	"os"
	"sync"
	"syscall"

	"github.com/berth-dev/berth/internal/timing"
	"golang.org/x/sys/unix"
)

// reaper is the monitor's only caller of wait4. As a child subreaper the
// monitor inherits orphans of the container (its init once `runtime create`
// is gone, whatever a runtime leaves behind), so it reaps with wait4(-1); a
// second waiter (os/exec's Cmd.Wait) would race with it for the same
// children and see ECHILD. Every process the monitor starts is therefore
// spawned through the reaper, which hands each exit status to the one
// waiter of that pid.
//
// Exits are noticed through pidfds in Go's poller rather than SIGCHLD:
// os/signal parks a thread for good in its receive loop, and every thread
// costs the monitor its stacks (48 KiB) for the container's lifetime.
type reaper struct {
	mu sync.Mutex
	// exited holds statuses reaped and not yet taken by their waiter. Other
	// orphans' statuses land here too; forget clears them before each
	// create, so a stale one can never match a recycled pid.
	exited map[int]unix.WaitStatus
}

func newReaper() *reaper {
	return &reaper{exited: make(map[int]unix.WaitStatus)}
}

// reap collects every exited child.
func (r *reaper) reap() {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
		r.mu.Lock()
		r.exited[pid] = ws
		r.mu.Unlock()
	}
}

func (r *reaper) take(pid int) (unix.WaitStatus, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ws, ok := r.exited[pid]
	if ok {
		delete(r.exited, pid)
	}
	return ws, ok
}

// forget drops statuses nobody waited for.
func (r *reaper) forget() {
	r.mu.Lock()
	clear(r.exited)
	r.mu.Unlock()
}

// watch returns a channel that receives pid's exit status once. pid must be
// our child (the container's init is, once reparented to us).
func (r *reaper) watch(pid int) <-chan unix.WaitStatus {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		// ESRCH: gone already; it was our child, so its status is
		// waiting for wait4 (or reaped into r.exited).
		fd = -1
	}
	return r.waitAsync(pid, fd)
}

func (r *reaper) waitAsync(pid, pidfd int) <-chan unix.WaitStatus {
	ch := make(chan unix.WaitStatus, 1)
	go func() { ch <- r.wait(pid, pidfd) }()
	return ch
}

// wait blocks (a goroutine in the poller, not a thread) until pid exited and
// returns its status. It owns pidfd.
func (r *reaper) wait(pid, pidfd int) unix.WaitStatus {
	done := func() (unix.WaitStatus, bool) {
		r.reap()
		return r.take(pid)
	}
	if pidfd >= 0 {
		_ = unix.SetNonblock(pidfd, true)
		f := os.NewFile(uintptr(pidfd), "pidfd")
		defer f.Close()
		if rc, err := f.SyscallConn(); err == nil {
			var ws unix.WaitStatus
			err = rc.Read(func(uintptr) bool {
				var ok bool
				ws, ok = done()
				return ok
			})
			if err == nil {
				return ws
			}
		}
	}
	// No pidfd in the poller: wait for the child to be waitable, then reap.
	for {
		if ws, ok := done(); ok {
			return ws
		}
		var info unix.Siginfo
		if err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil); err != nil && err != unix.EINTR {
			if ws, ok := done(); ok {
				return ws
			}
			return 0 // not our child: nothing to learn
		}
	}
}

// spawn starts argv[0] with stdio files (nil means /dev/null) and returns
// its pid and a channel for its exit status.
func (r *reaper) spawn(argv []string, stdin, stdout, stderr *os.File) (int, <-chan unix.WaitStatus, error) {
	var null *os.File
	files := make([]uintptr, 3)
	for i, f := range []*os.File{stdin, stdout, stderr} {
		if f == nil && timing.On && i == 2 {
			f = os.Stderr // BERTH_TIMING: the runtime's stage lines
		}
		if f == nil {
			if null == nil {
				var err error
				if null, err = os.OpenFile(os.DevNull, os.O_RDWR, 0); err != nil {
					return 0, nil, err
				}
				defer null.Close()
			}
			f = null
		}
		files[i] = f.Fd()
	}
	pidfd := -1
	pid, err := syscall.ForkExec(argv[0], argv, &syscall.ProcAttr{
		Env:   os.Environ(),
		Files: files,
		Sys:   &syscall.SysProcAttr{PidFD: &pidfd},
	})
	if err != nil {
		return 0, nil, &os.PathError{Op: "fork/exec", Path: argv[0], Err: err}
	}
	return pid, r.waitAsync(pid, pidfd), nil
}

// exitCode is Docker's exit code for a wait status: the exit status, or
// 128+signal for a process killed by a signal.
func exitCode(ws unix.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}
