package snapshot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// copyTree copies the tree under src into the existing, empty directory dst,
// preserving what a container image can carry: file types (including
// devices, FIFOs and sockets), hard links, owners, modes with setuid/setgid/
// sticky bits, extended attributes (file capabilities, overlay opaque
// markers, ACLs) and timestamps.
//
// Every operation is relative to an open directory fd (the *at syscalls), so
// a symlink inside the tree can never redirect the copy outside it.
func copyTree(ctx context.Context, src, dst string) error {
	srcFd, err := unix.Open(src, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: src, Err: err}
	}
	defer unix.Close(srcFd)
	dstFd, err := unix.Open(dst, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: dst, Err: err}
	}
	defer unix.Close(dstFd)
	c := &copier{ctx: ctx, dstRoot: dstFd, links: map[inode]string{}, buf: make([]byte, 64<<10)}
	if err := c.copyDir(srcFd, dstFd, ""); err != nil {
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	// The root's own metadata, applied through its fds.
	var st unix.Stat_t
	if err := unix.Fstat(srcFd, &st); err != nil {
		return &os.PathError{Op: "fstat", Path: src, Err: err}
	}
	root := entry{srcDir: unix.AT_FDCWD, dstDir: unix.AT_FDCWD,
		srcName: procFd(srcFd), dstName: procFd(dstFd), follow: true}
	if err := c.applyMeta(root, &st); err != nil {
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	return nil
}

func procFd(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

type inode struct{ dev, ino uint64 }

type copier struct {
	ctx     context.Context
	dstRoot int
	// links maps a source inode with several links to the first copy's
	// path relative to dstRoot, so later links become hard links again.
	links map[inode]string
	buf   []byte
}

// entry names one file: a name relative to an open directory, in both trees.
type entry struct {
	srcDir, dstDir   int
	srcName, dstName string
	rel              string // path below the roots, for errors and links
	// follow: the names are /proc/self/fd links to follow (the root).
	follow bool
}

func (c *copier) copyDir(srcDir, dstDir int, rel string) error {
	if err := c.ctx.Err(); err != nil {
		return err
	}
	// A dup, because os.File owns and closes the fd it wraps.
	dup, err := unix.Dup(srcDir)
	if err != nil {
		return err
	}
	d := os.NewFile(uintptr(dup), rel)
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return fmt.Errorf("read directory %q: %w", rel, err)
	}
	for _, name := range names {
		e := entry{srcDir: srcDir, dstDir: dstDir, srcName: name, dstName: name, rel: filepath.Join(rel, name)}
		if err := c.copyEntry(e); err != nil {
			return err
		}
	}
	return nil
}

func (c *copier) copyEntry(e entry) error {
	var st unix.Stat_t
	if err := unix.Fstatat(e.srcDir, e.srcName, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "lstat", Path: e.rel, Err: err}
	}
	typ := st.Mode & unix.S_IFMT
	if typ != unix.S_IFDIR && st.Nlink > 1 {
		in := inode{uint64(st.Dev), st.Ino}
		if first, ok := c.links[in]; ok {
			// A hard link shares the first copy's inode and metadata.
			if err := unix.Linkat(c.dstRoot, first, e.dstDir, e.dstName, 0); err != nil {
				return &os.LinkError{Op: "link", Old: first, New: e.rel, Err: err}
			}
			return nil
		}
		c.links[in] = e.rel
	}
	var err error
	switch typ {
	case unix.S_IFDIR:
		err = c.copySubdir(e)
	case unix.S_IFREG:
		err = c.copyFile(e, &st)
	case unix.S_IFLNK:
		err = c.copySymlink(e, &st)
	default: // devices, FIFOs, sockets
		err = unix.Mknodat(e.dstDir, e.dstName, st.Mode, int(st.Rdev))
		if err != nil {
			err = &os.PathError{Op: "mknod", Path: e.rel, Err: err}
		}
	}
	if err != nil {
		return err
	}
	return c.applyMeta(e, &st)
}

func (c *copier) copySubdir(e entry) error {
	if err := unix.Mkdirat(e.dstDir, e.dstName, 0o700); err != nil {
		return &os.PathError{Op: "mkdir", Path: e.rel, Err: err}
	}
	flags := unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	s, err := unix.Openat(e.srcDir, e.srcName, flags, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: e.rel, Err: err}
	}
	defer unix.Close(s)
	d, err := unix.Openat(e.dstDir, e.dstName, flags, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: e.rel, Err: err}
	}
	defer unix.Close(d)
	return c.copyDir(s, d, e.rel)
}

func (c *copier) copySymlink(e entry, st *unix.Stat_t) error {
	buf := make([]byte, st.Size+1)
	n, err := unix.Readlinkat(e.srcDir, e.srcName, buf)
	if err != nil {
		return &os.PathError{Op: "readlink", Path: e.rel, Err: err}
	}
	if err := unix.Symlinkat(string(buf[:n]), e.dstDir, e.dstName); err != nil {
		return &os.PathError{Op: "symlink", Path: e.rel, Err: err}
	}
	return nil
}

// copyFile clones the file's extents when the filesystem can (FICLONE:
// btrfs, XFS — instant and space-free), else copies in the kernel with
// copy_file_range, else through a buffer.
func (c *copier) copyFile(e entry, st *unix.Stat_t) error {
	s, err := unix.Openat(e.srcDir, e.srcName, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: e.rel, Err: err}
	}
	defer unix.Close(s)
	d, err := unix.Openat(e.dstDir, e.dstName, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return &os.PathError{Op: "create", Path: e.rel, Err: err}
	}
	defer unix.Close(d)
	if st.Size == 0 || unix.IoctlFileClone(d, s) == nil {
		return nil
	}
	var done int64
	for done < st.Size {
		n, err := unix.CopyFileRange(s, nil, d, nil, int(min(st.Size-done, 1<<30)), 0)
		if err != nil {
			if done == 0 && (errors.Is(err, unix.EXDEV) || errors.Is(err, unix.ENOSYS) ||
				errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP)) {
				return c.copyBuffered(s, d, e.rel)
			}
			return &os.PathError{Op: "copy_file_range", Path: e.rel, Err: err}
		}
		if n == 0 { // the source shrank while we copied
			break
		}
		done += int64(n)
	}
	return nil
}

func (c *copier) copyBuffered(s, d int, rel string) error {
	for {
		n, err := unix.Read(s, c.buf)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return &os.PathError{Op: "read", Path: rel, Err: err}
		}
		if n == 0 {
			return nil
		}
		for b := c.buf[:n]; len(b) > 0; {
			m, err := unix.Write(d, b)
			if err != nil && !errors.Is(err, unix.EINTR) {
				return &os.PathError{Op: "write", Path: rel, Err: err}
			}
			b = b[max(m, 0):]
		}
	}
}

// applyMeta sets owner, mode, xattrs and times on the copy, in that order:
// chown clears setuid/setgid bits and file capabilities, so mode and xattrs
// come after it, and times come last because every change above bumps them.
func (c *copier) applyMeta(e entry, st *unix.Stat_t) error {
	isLink := st.Mode&unix.S_IFMT == unix.S_IFLNK
	nofollow := unix.AT_SYMLINK_NOFOLLOW
	if e.follow {
		nofollow = 0
	}
	if err := unix.Fchownat(e.dstDir, e.dstName, int(st.Uid), int(st.Gid), nofollow); err != nil {
		return &os.PathError{Op: "chown", Path: e.rel, Err: err}
	}
	// A symlink's mode is always 0777 on Linux and cannot be changed.
	if !isLink {
		if err := unix.Fchmodat(e.dstDir, e.dstName, st.Mode&0o7777, 0); err != nil {
			return &os.PathError{Op: "chmod", Path: e.rel, Err: err}
		}
	}
	if err := c.copyXattrs(e); err != nil {
		return err
	}
	ts := []unix.Timespec{st.Atim, st.Mtim}
	if err := unix.UtimesNanoAt(e.dstDir, e.dstName, ts, nofollow); err != nil {
		return &os.PathError{Op: "utimensat", Path: e.rel, Err: err}
	}
	return nil
}

// xattrPath names the entry for the l*xattr calls, which have no *at form
// before Linux 6.13: /proc/self/fd/<dirfd>/<name> resolves the directory
// through its fd and, with the l-variants, does not follow the last name.
func xattrPath(dir int, name string) string {
	if dir == unix.AT_FDCWD {
		return name
	}
	return procFd(dir) + "/" + name
}

func (c *copier) copyXattrs(e entry) error {
	src, dst := xattrPath(e.srcDir, e.srcName), xattrPath(e.dstDir, e.dstName)
	list, get, set := unix.Llistxattr, unix.Lgetxattr, unix.Lsetxattr
	if e.follow {
		list, get, set = unix.Listxattr, unix.Getxattr, unix.Setxattr
	}
	names, err := readXattr(func(b []byte) (int, error) { return list(src, b) })
	if err != nil {
		if errors.Is(err, unix.ENOTSUP) {
			return nil
		}
		return &os.PathError{Op: "listxattr", Path: e.rel, Err: err}
	}
	for _, name := range splitNul(names) {
		val, err := readXattr(func(b []byte) (int, error) { return get(src, name, b) })
		if errors.Is(err, unix.ENODATA) {
			continue // removed meanwhile
		}
		if err != nil {
			return &os.PathError{Op: "getxattr " + name, Path: e.rel, Err: err}
		}
		if err := set(dst, name, val, 0); err != nil {
			return &os.PathError{Op: "setxattr " + name, Path: e.rel, Err: err}
		}
	}
	return nil
}

// readXattr calls f with a growing buffer until the value fits (values can
// change size between the size query and the read).
func readXattr(f func([]byte) (int, error)) ([]byte, error) {
	size := 256
	for {
		buf := make([]byte, size)
		n, err := f(buf)
		if errors.Is(err, unix.ERANGE) {
			if m, err := f(nil); err == nil && m > size {
				size = m
			} else {
				size *= 2
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}

func splitNul(b []byte) []string {
	var out []string
	for len(b) > 0 {
		i := 0
		for i < len(b) && b[i] != 0 {
			i++
		}
		if i > 0 {
			out = append(out, string(b[:i]))
		}
		if i == len(b) {
			break
		}
		b = b[i+1:]
	}
	return out
}
