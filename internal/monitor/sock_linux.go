package monitor

import (
	"errors"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// Unix sockets on plain syscalls and os.File: os.NewFile registers a
// non-blocking descriptor with Go's poller, which is all the monitor needs;
// the net package would add its resolver and its memory to every container.

// listenUnix binds a stream socket at path (relative to the working
// directory, see Run) after removing a stale one.
func listenUnix(path string) (*os.File, error) {
	_ = os.Remove(path)
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "bind", Path: path, Err: err}
	}
	if err := unix.Listen(fd, 16); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "listen", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}

// accept waits for a connection on l; it fails once l is closed.
func accept(l *os.File) (*os.File, error) {
	rc, err := l.SyscallConn()
	if err != nil {
		return nil, err
	}
	var nfd int
	var aerr error
	err = rc.Read(func(fd uintptr) bool {
		nfd, _, aerr = unix.Accept4(int(fd), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		return aerr != unix.EAGAIN
	})
	if err != nil {
		return nil, err
	}
	if aerr != nil {
		return nil, os.NewSyscallError("accept4", aerr)
	}
	return os.NewFile(uintptr(nfd), "conn"), nil
}

// dialUnix connects to the socket at path. Paths longer than sun_path
// (108 bytes; deep state directories reach it) are reached through an
// O_PATH descriptor of their directory and /proc/self/fd.
func dialUnix(path string) (*os.File, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	addr := path
	if len(path) >= 100 {
		dir, base := splitPath(path)
		dfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			unix.Close(fd)
			return nil, &os.PathError{Op: "open", Path: dir, Err: err}
		}
		defer unix.Close(dfd)
		addr = "/proc/self/fd/" + strconv.Itoa(dfd) + "/" + base
	}
	// A local stream connect completes at once or fails (EAGAIN: backlog
	// full); no need to poll for it.
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: addr}); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "connect", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}

func splitPath(p string) (dir, base string) {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' {
			if i == 0 {
				return "/", p[1:]
			}
			return p[:i], p[i+1:]
		}
	}
	return ".", p
}

// shutdownWrite half-closes a socket: the peer reads EOF, and can still
// write back.
func shutdownWrite(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.Shutdown(int(fd), unix.SHUT_WR) }); err != nil {
		return err
	}
	return os.NewSyscallError("shutdown", serr)
}

// recvFd reads one file descriptor passed with SCM_RIGHTS on conn: the
// runtime sends the pty master this way on the console socket.
func recvFd(conn *os.File) (*os.File, error) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return nil, err
	}
	buf := make([]byte, 256)
	oob := make([]byte, unix.CmsgSpace(4*4))
	var n, oobn int
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		n, oobn, _, _, rerr = unix.Recvmsg(int(fd), buf, oob, unix.MSG_CMSG_CLOEXEC)
		return rerr != unix.EAGAIN
	})
	if err != nil {
		return nil, err
	}
	if rerr != nil {
		return nil, os.NewSyscallError("recvmsg", rerr)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return nil, wrap("console socket", err)
	}
	var fds []int
	for i := range msgs {
		got, err := unix.ParseUnixRights(&msgs[i])
		if err == nil {
			fds = append(fds, got...)
		}
	}
	if len(fds) == 0 {
		return nil, errors.New("console socket: no file descriptor received (" + strconv.Itoa(n) + " bytes)")
	}
	for _, extra := range fds[1:] {
		unix.Close(extra)
	}
	// Non-blocking, so that os.NewFile hands it to the poller and a read
	// waiting for output does not hold a thread.
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		return nil, os.NewSyscallError("fcntl", err)
	}
	return os.NewFile(uintptr(fds[0]), "pty-master"), nil
}
