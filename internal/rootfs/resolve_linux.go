package rootfs

import (
	"errors"
	"os"
	"path/filepath"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"
)

// Safe resolution inside the rootfs.
//
// openat2(2) with RESOLVE_IN_ROOT makes the kernel treat the rootfs
// descriptor as "/" for the whole lookup, symlinks and ".." included, so no
// path can leave it. That is all a fresh mount namespace needs: nobody else
// can mount over /proc in it while we work, which is the race the fuller
// pathrs-lite checks guard against. The lean path here costs a handful of
// syscalls per mount where pathrs-lite costs dozens, and container start
// time is a feature. Kernels without openat2 (before 5.6) fall back to
// pathrs-lite.

const resolveFlags = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS

var haveOpenat2 = true

func openInRoot(root *os.File, path string, flags int) (*os.File, error) {
	if haveOpenat2 {
		fd, err := unix.Openat2(int(root.Fd()), path, &unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Resolve: resolveFlags})
		if err == nil {
			return os.NewFile(uintptr(fd), path), nil
		}
		if !errors.Is(err, unix.ENOSYS) {
			return nil, &os.PathError{Op: "openat2", Path: path, Err: err}
		}
		haveOpenat2 = false
	}
	return pathrs.OpenatInRoot(root, path)
}

// mkdirAllInRoot creates path (and parents) inside root and returns an
// O_PATH handle to the directory.
func mkdirAllInRoot(root *os.File, path string, mode uint32) (*os.File, error) {
	if !haveOpenat2 {
		return pathrs.MkdirAllHandle(root, path, os.FileMode(mode))
	}
	f, err := openInRoot(root, path, unix.O_PATH|unix.O_DIRECTORY)
	switch {
	case err == nil:
		return f, nil
	case !haveOpenat2: // found out just now
		return pathrs.MkdirAllHandle(root, path, os.FileMode(mode))
	case !errors.Is(err, unix.ENOENT):
		return nil, err
	}
	clean := filepath.Clean("/" + path)
	if clean == "/" {
		return nil, err
	}
	parent, err := mkdirAllInRoot(root, filepath.Dir(clean), mode)
	if err != nil {
		return nil, err
	}
	defer parent.Close()
	// mkdirat never follows a symlink in its last component, and the parent
	// was resolved inside root: the new directory is inside root.
	if err := unix.Mkdirat(int(parent.Fd()), filepath.Base(clean), mode); err != nil && !errors.Is(err, unix.EEXIST) {
		return nil, &os.PathError{Op: "mkdir", Path: clean, Err: err}
	}
	f, err = openInRoot(root, clean, unix.O_PATH|unix.O_DIRECTORY)
	if errors.Is(err, unix.ENOENT) {
		// A dangling symlink in the way (an image's /var/run -> /run with
		// no /run): pathrs-lite creates its target inside the root.
		return pathrs.MkdirAllHandle(root, clean, os.FileMode(mode))
	}
	return f, err
}
