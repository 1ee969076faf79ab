package rootfs

import (
	"errors"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth/internal/linux"
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
		fd, err := linux.Openat2(int(root.Fd()), path, &unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Resolve: resolveFlags})
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
// O_PATH handle to the directory. Symlinks on the way are followed inside
// the root; when one points at a directory that does not exist yet (an
// image's /var/run -> /run without /run), the target is created, as runc
// does.
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
	case !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ENOTDIR):
		return nil, err
	}
	if f, ok := mkdirLeafInRoot(root, path, mode); ok {
		return f, nil
	}
	return walkInRoot(root, path, mode)
}

// mkdirLeafInRoot is mkdirAllInRoot's common case, a missing last
// component under an existing directory (a mount point under /dev, one
// under the cgroup tmpfs), in three syscalls instead of a walk from the
// root. The parent is resolved inside the root; the new directory is made
// and opened relative to that descriptor with a single, literal name, and
// not followed if it is (or has become) a symlink. Anything else (the
// parent is missing, the name is a dangling symlink, which mkdirat refuses
// with EEXIST) reports !ok, and the caller walks.
func mkdirLeafInRoot(root *os.File, path string, mode uint32) (*os.File, bool) {
	// ".." after a symlink means the link target's parent; leave that to
	// the walk rather than let Clean resolve it lexically.
	for _, c := range strings.Split(path, "/") {
		if c == ".." {
			return nil, false
		}
	}
	path = filepath.Clean("/" + path)
	if path == "/" {
		return nil, false
	}
	name := filepath.Base(path)
	dir, err := openInRoot(root, filepath.Dir(path), unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return nil, false
	}
	defer dir.Close()
	if err := unix.Mkdirat(int(dir.Fd()), name, mode); err != nil {
		return nil, false
	}
	fd, err := unix.Openat(int(dir.Fd()), name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, false
	}
	return os.NewFile(uintptr(fd), path), true
}

// maxSymlinks bounds symlink expansion, as the kernel's ELOOP limit does.
const maxSymlinks = 40

// walkInRoot resolves path one component at a time, creating missing
// directories and expanding symlinks itself. Each step opens what it has
// resolved so far with RESOLVE_IN_ROOT and creates entries only with
// *at(2) calls on those descriptors, so a name can never resolve outside
// the root however the links are made; ".." at the root stays at the root.
func walkInRoot(root *os.File, path string, mode uint32) (*os.File, error) {
	todo := splitPath(path)
	cur := "/"
	links := 0
	for len(todo) > 0 {
		comp := todo[0]
		todo = todo[1:]
		if comp == ".." {
			cur = filepath.Dir(cur)
			continue
		}
		dir, err := openInRoot(root, cur, unix.O_PATH|unix.O_DIRECTORY)
		if err != nil {
			return nil, err
		}
		var st unix.Stat_t
		err = unix.Fstatat(int(dir.Fd()), comp, &st, unix.AT_SYMLINK_NOFOLLOW)
		switch {
		case err == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK:
			target, rerr := readlinkat(dir, comp)
			dir.Close()
			if rerr != nil {
				return nil, rerr
			}
			if links++; links > maxSymlinks {
				return nil, &os.PathError{Op: "resolve", Path: path, Err: unix.ELOOP}
			}
			if filepath.IsAbs(target) {
				cur = "/"
			}
			todo = append(splitPath(target), todo...)
			continue
		case err == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR:
			dir.Close()
			return nil, &os.PathError{Op: "mkdir", Path: filepath.Join(cur, comp), Err: unix.ENOTDIR}
		case errors.Is(err, unix.ENOENT):
			err = unix.Mkdirat(int(dir.Fd()), comp, mode)
			if err != nil && !errors.Is(err, unix.EEXIST) {
				dir.Close()
				return nil, &os.PathError{Op: "mkdir", Path: filepath.Join(cur, comp), Err: err}
			}
		case err != nil:
			dir.Close()
			return nil, &os.PathError{Op: "stat", Path: filepath.Join(cur, comp), Err: err}
		}
		dir.Close()
		cur = filepath.Join(cur, comp)
	}
	return openInRoot(root, cur, unix.O_PATH|unix.O_DIRECTORY)
}

// resolveFileInRoot returns path with a final-component symlink expanded
// (inside the root, repeatedly), for creating a file a link points to.
func resolveFileInRoot(root *os.File, path string) (string, error) {
	for i := 0; i < maxSymlinks; i++ {
		dir, err := openInRoot(root, filepath.Dir(path), unix.O_PATH|unix.O_DIRECTORY)
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			return path, nil // the parent is created later, inside the root
		}
		if err != nil {
			return "", err
		}
		target, err := readlinkat(dir, filepath.Base(path))
		dir.Close()
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			return path, nil // not a symlink (or nothing there yet)
		}
		if err != nil {
			return "", err
		}
		if filepath.IsAbs(target) {
			path = filepath.Clean(target)
		} else {
			path = filepath.Join(filepath.Dir(path), target)
		}
		path = filepath.Clean("/" + path)
	}
	return "", &os.PathError{Op: "resolve", Path: path, Err: unix.ELOOP}
}

func readlinkat(dir *os.File, name string) (string, error) {
	buf := make([]byte, 4096)
	n, err := unix.Readlinkat(int(dir.Fd()), name, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

func splitPath(p string) []string {
	var out []string
	for _, c := range strings.Split(p, "/") {
		if c != "" && c != "." {
			out = append(out, c)
		}
	}
	return out
}
