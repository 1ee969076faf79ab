package image

import (
	"context"
	"errors"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// fileLock is a flock(2) on a file of its own. flock locks belong to the
// open file description, so two opens in one process exclude each other
// as two processes do, and the kernel drops the lock when a killed holder's
// descriptors close: no stale lock survives a kill -9.
type fileLock struct{ f *os.File }

// lockFile takes path's lock, shared or exclusive, waiting until ctx ends.
// It polls with LOCK_NB rather than blocking in flock so that a cancelled
// pull or a Ctrl-C does not hang behind another process's long pull.
func lockFile(ctx context.Context, path string, exclusive bool) (*fileLock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	how := unix.LOCK_SH
	if exclusive {
		how = unix.LOCK_EX
	}
	wait := time.Millisecond
	for {
		err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
		if err == nil {
			return &fileLock{f: f}, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			f.Close()
			return nil, &os.PathError{Op: "flock", Path: path, Err: err}
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(wait):
		}
		if wait < 50*time.Millisecond {
			wait *= 2
		}
	}
}

func (l *fileLock) unlock() {
	// Closing the descriptor releases the flock.
	l.f.Close()
}
