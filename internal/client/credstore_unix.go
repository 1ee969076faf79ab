//go:build unix

package client

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// lockConfigDir takes the lock internal/registry takes around
// config.json's read-modify-write, so a `berth login` here and one in
// process never lose each other's entries.
func lockConfigDir(dir string) (func(), error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("lock docker config: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, ".config.json.lock"), os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock docker config: %w", err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock docker config: %w", &os.PathError{Op: "flock", Path: f.Name(), Err: err})
	}
	return func() { f.Close() }, nil
}
