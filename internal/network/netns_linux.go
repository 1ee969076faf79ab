package network

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
)

// NewNetNS creates a network namespace that lives as long as a bind mount
// of its nsfs file at path, with no process in it.
// unshare(CLONE_NEWNET) moves only the calling thread, so it runs on a
// locked OS thread that returns to its namespace with setns before it is
// unlocked. (Letting the thread die instead is not enough: when the
// goroutine happens to run on the main thread, the runtime parks that
// thread rather than ending it, and /proc/self/net, which follows the
// main thread, would then show the container's namespace.) Its loopback interface is brought up here, as CNI's loopback
// plugin would, so --network none still has a working 127.0.0.1.
func NewNetNS(path string) (retErr error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o711); err != nil {
		return err
	}
	// The mount point must be a file; a leftover mount from a crash is
	// unmounted first so the new namespace is not stacked on an old one.
	_ = unix.Unmount(path, unix.MNT_DETACH)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDONLY|unix.O_CLOEXEC, 0o444)
	if err != nil {
		return err
	}
	f.Close()
	defer func() {
		if retErr != nil {
			_ = os.Remove(path)
		}
	}()
	return onLockedThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return &os.SyscallError{Syscall: "unshare(CLONE_NEWNET)", Err: err}
		}
		return nil
	}, func() error {
		if err := loopbackUp(); err != nil {
			return err
		}
		src := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		if err := unix.Mount(src, path, "", unix.MS_BIND, ""); err != nil {
			return &os.PathError{Op: "bind mount netns", Path: path, Err: err}
		}
		return nil
	})
}

// RemoveNetNS unmounts and deletes a namespace made by NewNetNS. The
// namespace itself ends when its last user (a container process, an open
// fd) is gone. A missing path is not an error.
func RemoveNetNS(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return &os.PathError{Op: "unmount netns", Path: path, Err: err}
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// IsNetNS reports whether path is a mounted network namespace.
func IsNetNS(path string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false
	}
	return st.Type == unix.NSFS_MAGIC
}

// loopbackUp sets IFF_UP on "lo" in the calling thread's network namespace.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return &os.SyscallError{Syscall: "socket", Err: err}
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return &os.SyscallError{Syscall: "ioctl(SIOCGIFFLAGS lo)", Err: err}
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return &os.SyscallError{Syscall: "ioctl(SIOCSIFFLAGS lo)", Err: err}
	}
	return nil
}

// onLockedThread runs fn on a locked OS thread whose network namespace
// enter switches (setns or unshare), then switches the thread back to its
// own namespace before unlocking it. A thread that cannot switch back
// stays locked, and the runtime ends it (or, for the main thread, parks
// it) when the goroutine returns, so no other goroutine ever runs in the
// foreign namespace.
func onLockedThread(enter func() error, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		if err := enter(); err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		err = fn()
		if unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

// InNetNS runs fn with the network namespace at nsPath (a nsfs file such
// as <state>/netns/<id> or /proc/PID/ns/net) as the calling thread's:
// sockets fn creates belong to that namespace and stay in it afterwards.
// fn must not start goroutines that expect the namespace.
func InNetNS(nsPath string, fn func() error) error {
	ns, err := os.Open(nsPath)
	if err != nil {
		return err
	}
	defer ns.Close()
	return onLockedThread(func() error {
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			return &os.SyscallError{Syscall: "setns", Err: err}
		}
		return nil
	}, fn)
}
