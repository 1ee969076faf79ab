package runtime

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// The cgroup files the init writes "0" to (msgPrepared) are opened by the
// parent and passed with the message, so the init does no path lookups in
// cgroupfs: a dozen kernfs walks, each racing the parent's own work in the
// same hierarchies, on the path to the workload. Writing "0" moves the
// writing thread, whoever opened the file.

// sendWithFDs writes a framed message with fds attached to its first byte.
func sendWithFDs(w io.Writer, b []byte, fds []int) error {
	f, ok := w.(*os.File)
	if !ok {
		return errors.New("sync: descriptors need a socket")
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var n int
	var serr error
	if err := rc.Write(func(fd uintptr) bool {
		n, serr = unix.SendmsgN(int(fd), b, unix.UnixRights(fds...), nil, 0)
		return serr != unix.EAGAIN
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("sync: send descriptors: %w", serr)
	}
	if n < len(b) {
		_, err = f.Write(b[n:])
	}
	return err
}

// maxPassedFDs bounds the descriptors a message may carry: one per cgroup
// hierarchy.
const maxPassedFDs = 32

// readMsgWithFDs is readMsg for a message that may carry descriptors. They
// are received close-on-exec: nothing of the host's may reach the workload.
func readMsgWithFDs(f *os.File) (*syncMsg, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var hdr [4]byte
	oob := make([]byte, unix.CmsgSpace(maxPassedFDs*4))
	var n, oobn, flags int
	var rerr error
	if err := rc.Read(func(fd uintptr) bool {
		n, oobn, flags, _, rerr = unix.Recvmsg(int(fd), hdr[:], oob, unix.MSG_CMSG_CLOEXEC)
		return rerr != unix.EAGAIN
	}); err != nil {
		return nil, err
	}
	if rerr != nil {
		return nil, rerr
	}
	fds, err := parseRights(oob[:oobn])
	if err != nil {
		return nil, err
	}
	if flags&unix.MSG_CTRUNC != 0 {
		closeFDs(fds)
		return nil, errors.New("sync: too many descriptors in a message")
	}
	if n == 0 {
		closeFDs(fds)
		return nil, io.EOF
	}
	m, err := readMsg(io.MultiReader(bytes.NewReader(hdr[:n]), f))
	if err != nil {
		closeFDs(fds)
		return nil, err
	}
	m.FDs = fds
	return m, nil
}

func parseRights(oob []byte) ([]int, error) {
	if len(oob) == 0 {
		return nil, nil
	}
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("sync: %w", err)
	}
	var fds []int
	for _, m := range msgs {
		r, err := unix.ParseUnixRights(&m)
		if err != nil {
			closeFDs(fds)
			return nil, fmt.Errorf("sync: %w", err)
		}
		fds = append(fds, r...)
	}
	return fds, nil
}

func closeFDs(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// openFiles opens paths for writing, for sendWithFDs.
func openFiles(paths []string) ([]int, error) {
	fds := make([]int, 0, len(paths))
	for _, p := range paths {
		fd, err := unix.Open(p, unix.O_WRONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			closeFDs(fds)
			return nil, &os.PathError{Op: "open", Path: p, Err: err}
		}
		fds = append(fds, fd)
	}
	return fds, nil
}
