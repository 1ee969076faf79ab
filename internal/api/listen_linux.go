package api

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// ListenUnix opens the daemon's socket at path. A lock file next to it
// (path + ".lock", held with flock for the daemon's life) makes a second
// daemon on the same socket fail instead of stealing it; a socket file left
// by a daemon that died is removed. The socket is mode 0660 with the named
// group when that group exists (Docker's docker group), else 0600: access
// to it is root on the host. close releases the socket and the lock.
func ListenUnix(path, group string) (ln net.Listener, closeFn func() error, retErr error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, nil, fmt.Errorf("socket directory: %w", err)
	}
	lockPath := path + ".lock"
	lf, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("lock %s: %w", lockPath, err)
	}
	if err := unix.Flock(int(lf.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lf.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, nil, fmt.Errorf("another berthd is serving %s (lock %s is held)", path, lockPath)
		}
		return nil, nil, fmt.Errorf("lock %s: %w", lockPath, err)
	}
	defer func() {
		if retErr != nil {
			lf.Close()
		}
	}()
	// We hold the lock, so whatever socket file is there is stale.
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, nil, fmt.Errorf("remove stale socket: %w", err)
	}
	// Create the socket with no access and open it up after chown/chmod,
	// so there is no window in which others can connect.
	old := unix.Umask(0o777)
	l, err := net.Listen("unix", path)
	unix.Umask(old)
	if err != nil {
		return nil, nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	ul := l.(*net.UnixListener)
	ul.SetUnlinkOnClose(true)
	mode := os.FileMode(0o600)
	if group != "" {
		if g, err := user.LookupGroup(group); err == nil {
			gid, _ := strconv.Atoi(g.Gid)
			if err := os.Chown(path, os.Getuid(), gid); err != nil {
				l.Close()
				return nil, nil, fmt.Errorf("chown socket: %w", err)
			}
			mode = 0o660
		}
	}
	if err := os.Chmod(path, mode); err != nil {
		l.Close()
		return nil, nil, fmt.Errorf("chmod socket: %w", err)
	}
	return l, func() error {
		err := l.Close()
		lf.Close()
		return err
	}, nil
}
