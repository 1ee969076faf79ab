// Package liveness tells whether the process that started a piece of work
// (a build's scratch directory, a RUN step's container) is still alive,
// by a lock file it holds for the work's life. The kernel drops a flock
// with the last descriptor of its open file, so a process killed with
// SIGKILL releases its lock without running any code, and a later process
// that can take the lock knows the owner is gone. No pid is involved, so a
// recycled pid cannot pass for a dead owner.
//
// Hold and Claim can race: Claim may take a lock that Hold has just
// created but not yet locked, and remove it. Both check after locking that
// the path still names the file they locked; Hold reports ErrLost, and its
// caller starts over with a new name.
package liveness

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// ErrLost: the lock file was removed between its creation and its lock.
var ErrLost = errors.New("lock file removed while it was being locked")

// Hold creates path, which must not exist (fs.ErrExist otherwise), and
// locks it for as long as the returned file is open. The descriptor is
// close-on-exec: no child process keeps the owner alive.
func Hold(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if !same(f, path) {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, ErrLost)
	}
	return f, nil
}

// Claim takes path's lock if nobody holds it, that is, if its owner is
// gone. The caller then removes what the lock guarded, removes path, and
// closes the file. ok is false when a live owner holds the lock, or when
// path is gone or names another file by the time it is locked.
func Claim(path string) (f *os.File, ok bool) {
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, false
	}
	if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil || !same(f, path) {
		f.Close()
		return nil, false
	}
	return f, true
}

func same(f *os.File, path string) bool {
	a, err1 := f.Stat()
	b, err2 := os.Stat(path)
	return err1 == nil && err2 == nil && os.SameFile(a, b)
}
