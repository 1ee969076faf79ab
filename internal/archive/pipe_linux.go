package archive

import (
	"os"

	"golang.org/x/sys/unix"
)

// growPipe asks for a 1 MiB pipe buffer (the unprivileged maximum by
// default, /proc/sys/fs/pipe-max-size). Only a hint: a smaller pipe works,
// with more wakeups.
func growPipe(f *os.File) {
	// Through SyscallConn: f.Fd() would switch the pipe to blocking mode.
	if rc, err := f.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) { _, _ = unix.FcntlInt(fd, unix.F_SETPIPE_SZ, 1<<20) })
	}
}
