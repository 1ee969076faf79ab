//go:build unix

package content

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

var (
	// errLocked: another live writer holds the ingest.
	errLocked = errors.New("ingest is locked by another writer")
	// errStale: we locked a lock file that its holder had already removed.
	errStale = errors.New("ingest lock file was replaced")
)

// ingestLock is an flock(2) on <ingest>/lock. flock locks belong to the open
// file description, so they exclude other processes and other goroutines
// (each opens the file itself) alike, and the kernel drops them when the
// holder dies — which is what makes a kill -9 leave nothing locked.
type ingestLock struct {
	dir string
	f   *os.File
}

// lockIngest waits for the exclusive lock on dir's ingest, creating it. It
// polls with LOCK_NB because a blocking flock cannot be interrupted when ctx
// is cancelled; the back-off is capped so a waiter notices a finished
// download within tens of milliseconds.
func lockIngest(ctx context.Context, dir string) (*ingestLock, error) {
	delay := time.Millisecond
	for {
		// Mkdir, not MkdirAll: the directory may be created and removed
		// by other writers around us, and EEXIST just means "go on"; if it
		// vanished again, the open below fails and we come round.
		if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		l, err := tryLock(dir, true)
		switch {
		case err == nil:
			return l, nil
		case errors.Is(err, errStale), errors.Is(err, fs.ErrNotExist):
			// The holder removed the ingest as we opened it: start over
			// at once, the path is free now.
			continue
		case !errors.Is(err, errLocked):
			return nil, err
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		delay = min(delay*2, 20*time.Millisecond)
	}
}

// tryLockIngest takes an existing ingest's lock without waiting (for
// CleanIngests). errLocked when someone holds it; fs.ErrNotExist when the
// ingest has no lock file.
func tryLockIngest(dir string) (*ingestLock, error) {
	l, err := tryLock(dir, false)
	if errors.Is(err, errStale) {
		return nil, errLocked // somebody else is recreating it: theirs
	}
	return l, err
}

func tryLock(dir string, create bool) (*ingestLock, error) {
	path := filepath.Join(dir, "lock")
	flags := os.O_RDWR
	if create {
		flags |= os.O_CREATE
	}
	f, err := os.OpenFile(path, flags, 0o600)
	if err != nil {
		return nil, err
	}
	if err := flockNB(f); err != nil {
		f.Close()
		return nil, err
	}
	// The previous holder removes the ingest (lock file included) before
	// unlocking. If that happened between our open and our flock, we hold a
	// lock nobody else can see; a third writer could lock the new file at
	// the same path. Only a lock on the file the path names now counts.
	var held, named unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &held); err != nil {
		f.Close()
		return nil, &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	if err := unix.Stat(path, &named); err != nil || named.Ino != held.Ino || named.Dev != held.Dev {
		f.Close()
		return nil, errStale
	}
	return &ingestLock{dir: dir, f: f}, nil
}

func flockNB(f *os.File) error {
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EWOULDBLOCK):
			return errLocked
		default:
			return &os.PathError{Op: "flock", Path: f.Name(), Err: err}
		}
	}
}

// removeAndUnlock deletes the ingest while still holding its lock, then
// releases it; waiters wake up on a removed file, see errStale and retry.
func (l *ingestLock) removeAndUnlock() error {
	err := os.RemoveAll(l.dir)
	if cerr := l.f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("remove ingest %s: %w", l.dir, err)
	}
	return nil
}
