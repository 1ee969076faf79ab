//go:build unix

package registry

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// lockConfig serializes config.json updates across processes (two
// `berth login` at once must not lose one of the entries): an exclusive
// flock on a lock file beside it, released by the returned func.
func lockConfig(dir string) (func(), error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("lock docker config: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, ".config.json.lock"), os.O_CREATE|os.O_RDWR, 0o600)
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
