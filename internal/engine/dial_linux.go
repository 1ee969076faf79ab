package engine

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// dialUnix connects to a unix socket. A sun_path holds at most 108 bytes
// and state directories can be deeper than that (tests use t.TempDir()),
// so the socket is reached through /proc/self/fd/N/NAME of its directory.
func dialUnix(path string, timeout time.Duration) (*net.UnixConn, error) {
	target := path
	if len(path) >= 100 {
		fd, err := unix.Open(filepath.Dir(path), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: filepath.Dir(path), Err: err}
		}
		defer unix.Close(fd)
		target = "/proc/self/fd/" + strconv.Itoa(fd) + "/" + filepath.Base(path)
	}
	c, err := net.DialTimeout("unix", target, timeout)
	if err != nil {
		return nil, err
	}
	return c.(*net.UnixConn), nil
}
