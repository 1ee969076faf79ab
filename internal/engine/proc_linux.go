package engine

import (
	"errors"
	"time"

	"golang.org/x/sys/unix"
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

// stateWatch wakes a waiter when the monitor replaces monitor.json (it
// writes the file with rename(2), so IN_MOVED_TO on the bundle directory
// is every change) or the bundle goes away. A waiter learns of an exit the
// moment it is recorded, without polling, and before the monitor runs an
// exit command (`rm` for --rm) that would take the state away with it.
type stateWatch struct{ fd int }

// watchState watches id's bundle; nil (waits fall back to the timeout)
// when inotify is unavailable or the bundle does not exist.
func (e *Engine) watchState(id string) *stateWatch {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil
	}
	if _, err := unix.InotifyAddWatch(fd, e.bundleDir(id), unix.IN_MOVED_TO|unix.IN_DELETE_SELF|unix.IN_ONLYDIR); err != nil {
		unix.Close(fd)
		return nil
	}
	return &stateWatch{fd: fd}
}

func (w *stateWatch) close() {
	if w != nil {
		unix.Close(w.fd)
	}
}

// wait blocks until the state may have changed (a file renamed into the
// bundle, the bundle removed), pid exits, or d passes.
func (w *stateWatch) wait(pid int, d time.Duration) {
	if w == nil {
		waitExit(pid, d)
		return
	}
	fds := []unix.PollFd{{Fd: int32(w.fd), Events: unix.POLLIN}}
	if pid > 0 {
		if pfd, err := unix.PidfdOpen(pid, 0); err == nil {
			defer unix.Close(pfd)
			fds = append(fds, unix.PollFd{Fd: int32(pfd), Events: unix.POLLIN})
		}
	}
	for {
		_, err := unix.Poll(fds, int(d/time.Millisecond))
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	// Drain the events: the caller rereads the state whatever they were.
	var buf [4096]byte
	for {
		if n, err := unix.Read(w.fd, buf[:]); n <= 0 || err != nil {
			return
		}
	}
}
