package monitor

import (
	"os"
	"os/signal"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// reaper is the monitor's only caller of wait4. As a child subreaper the
// monitor inherits every orphan of the container (its init once `runtime
// create` exits, and whatever `runtime exec` leaves behind), so it must reap
// with wait4(-1); a second waiter (os/exec's Cmd.Wait) would race with it
// for the same children and see ECHILD. Every process the monitor starts is
// therefore spawned through the reaper, which hands each exit status to the
// one waiter registered for that pid.
type reaper struct {
	mu      sync.Mutex
	waiters map[int]chan unix.WaitStatus
	// unclaimed holds statuses of children nobody waited for yet: the
	// container's init can exit between `runtime create` writing its pid
	// and the monitor registering it. Bounded; cleared before each create
	// so a stale entry can never match a recycled pid.
	unclaimed map[int]unix.WaitStatus
	sigc      chan os.Signal
}

const maxUnclaimed = 64

func newReaper() *reaper {
	r := &reaper{
		waiters:   make(map[int]chan unix.WaitStatus),
		unclaimed: make(map[int]unix.WaitStatus),
		sigc:      make(chan os.Signal, 1),
	}
	signal.Notify(r.sigc, unix.SIGCHLD)
	go r.loop()
	return r
}

func (r *reaper) loop() {
	for range r.sigc {
		r.reap()
	}
}

// reap collects every exited child. SIGCHLD is not queued (several exits
// can raise one signal), hence the loop until no child is left to reap.
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
		if ch, ok := r.waiters[pid]; ok {
			delete(r.waiters, pid)
			ch <- ws
		} else if len(r.unclaimed) < maxUnclaimed {
			r.unclaimed[pid] = ws
		}
		r.mu.Unlock()
	}
}

// watch registers interest in pid's exit; the channel receives its status
// once (buffered, so the reaper never blocks).
func (r *reaper) watch(pid int) <-chan unix.WaitStatus {
	ch := make(chan unix.WaitStatus, 1)
	r.mu.Lock()
	if ws, ok := r.unclaimed[pid]; ok {
		delete(r.unclaimed, pid)
		ch <- ws
	} else {
		r.waiters[pid] = ch
	}
	r.mu.Unlock()
	return ch
}

// forget clears the unclaimed statuses (see reaper.unclaimed).
func (r *reaper) forget() {
	r.mu.Lock()
	clear(r.unclaimed)
	r.mu.Unlock()
}

// spawn starts argv[0] with stdio files (nil means /dev/null) and returns
// its pid and a channel for its exit status. The reaper lock is held across
// fork and registration so the child's exit cannot be reaped unregistered.
func (r *reaper) spawn(argv []string, stdin, stdout, stderr *os.File) (int, <-chan unix.WaitStatus, error) {
	var null *os.File
	files := make([]uintptr, 3)
	for i, f := range []*os.File{stdin, stdout, stderr} {
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
	ch := make(chan unix.WaitStatus, 1)
	r.mu.Lock()
	defer r.mu.Unlock()
	pid, err := syscall.ForkExec(argv[0], argv, &syscall.ProcAttr{
		Env:   os.Environ(),
		Files: files,
	})
	if err != nil {
		return 0, nil, &os.PathError{Op: "fork/exec", Path: argv[0], Err: err}
	}
	r.waiters[pid] = ch
	return pid, ch, nil
}

// exitCode is Docker's exit code for a wait status: the exit status, or
// 128+signal for a process killed by a signal.
func exitCode(ws unix.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}
