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
