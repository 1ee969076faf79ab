package volume

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

func flock(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("volume lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, &os.PathError{Op: "flock", Path: path, Err: err}
	}
	return func() { f.Close() }, nil
}

// isMountRoot reports whether path is the root of a mount (something is
// mounted on it), using statx's STATX_ATTR_MOUNT_ROOT (Linux 5.8).
func isMountRoot(path string) (bool, error) {
	var st unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, path, unix.AT_SYMLINK_NOFOLLOW, 0, &st); err != nil {
		return false, &os.PathError{Op: "statx", Path: path, Err: err}
	}
	return st.Attributes&unix.STATX_ATTR_MOUNT_ROOT != 0, nil
}

// Mount mounts the filesystem a volume's options name (type, device, o) on
// its Mountpoint, unless it is already mounted there; volumes without
// options are plain directories and need nothing. The mount stays until the
// volume is removed, as Docker's local driver keeps it while any container
// uses it: sharing one mount between containers is what makes a tmpfs or
// NFS volume shared.
func (s *Store) Mount(v *Volume) error {
	dev := v.Options["device"]
	if dev == "" {
		return nil
	}
	unlock, err := s.Lock()
	if err != nil {
		return err
	}
	defer unlock()
	mounted, err := isMountRoot(v.Mountpoint)
	if err != nil || mounted {
		return err
	}
	typ := v.Options["type"]
	var flags uintptr
	var data []string
	for _, o := range strings.Split(v.Options["o"], ",") {
		switch o {
		case "":
		case "bind":
			flags |= unix.MS_BIND
		case "rbind":
			flags |= unix.MS_BIND | unix.MS_REC
		case "ro":
			flags |= unix.MS_RDONLY
		case "nosuid":
			flags |= unix.MS_NOSUID
		case "nodev":
			flags |= unix.MS_NODEV
		case "noexec":
			flags |= unix.MS_NOEXEC
		default:
			data = append(data, o)
		}
	}
	if typ == "none" {
		typ = ""
	}
	if err := unix.Mount(dev, v.Mountpoint, typ, flags, strings.Join(data, ",")); err != nil {
		return fmt.Errorf("mount volume %s (type=%s device=%s o=%s): %w", v.Name, v.Options["type"], dev, v.Options["o"],
			&os.PathError{Op: "mount", Path: v.Mountpoint, Err: err})
	}
	return nil
}

// unmountData unmounts whatever Mount put on a volume's _data.
func unmountData(path string) error {
	for {
		mounted, err := isMountRoot(path)
		if errors.Is(err, os.ErrNotExist) || (err == nil && !mounted) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := unix.Unmount(path, unix.MNT_DETACH); err != nil {
			return &os.PathError{Op: "unmount", Path: path, Err: err}
		}
	}
}

// IsEmpty reports whether dir has no entries (a missing dir is empty).
func IsEmpty(dir string) (bool, error) {
	f, err := os.Open(dir)
	if errors.Is(err, os.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	_, err = f.Readdirnames(1)
	if err == io.EOF {
		return true, nil
	}
	return false, err
}

// Populate copies the tree at src (an image's content at the mount path,
// already resolved inside the container's rootfs) into dst when dst is empty,
// preserving owners, modes, times, symlinks, hard links and device nodes, as
// Docker fills a new volume. dst itself takes src's owner and mode, so a
// volume mounted on /var/lib/app owned by app:app stays writable by app. It
// never follows a symlink inside src.
func Populate(dst, src string) error {
	st, err := os.Lstat(src)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return nil
	}
	empty, err := IsEmpty(dst)
	if err != nil || !empty {
		return err
	}
	links := map[uint64]string{} // inode → first copied path, for hard links
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if err := copyEntry(p, target, rel == ".", links); err != nil {
			return fmt.Errorf("populate volume from %s: %w", p, err)
		}
		return nil
	})
}

func copyEntry(src, dst string, isRoot bool, links map[uint64]string) error {
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		return &os.PathError{Op: "lstat", Path: src, Err: err}
	}
	mode := st.Mode & unix.S_IFMT
	if mode != unix.S_IFDIR && st.Nlink > 1 {
		if first, ok := links[st.Ino]; ok {
			return os.Link(first, dst)
		}
		links[st.Ino] = dst
	}
	switch mode {
	case unix.S_IFDIR:
		if !isRoot {
			if err := unix.Mkdir(dst, 0o700); err != nil {
				return &os.PathError{Op: "mkdir", Path: dst, Err: err}
			}
		}
	case unix.S_IFREG:
		if err := copyFile(src, dst); err != nil {
			return err
		}
	case unix.S_IFLNK:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		if err := os.Symlink(target, dst); err != nil {
			return err
		}
	case unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO, unix.S_IFSOCK:
		if err := unix.Mknod(dst, st.Mode, int(st.Rdev)); err != nil {
			return &os.PathError{Op: "mknod", Path: dst, Err: err}
		}
	default:
		return nil
	}
	if err := unix.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
		return &os.PathError{Op: "lchown", Path: dst, Err: err}
	}
	if mode != unix.S_IFLNK {
		// After chown: chown clears setuid/setgid bits.
		if err := unix.Chmod(dst, st.Mode&0o7777); err != nil {
			return &os.PathError{Op: "chmod", Path: dst, Err: err}
		}
	}
	ts := []unix.Timespec{st.Atim, st.Mtim}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, dst, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "utimes", Path: dst, Err: err}
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	// io.Copy uses copy_file_range where the filesystems allow it.
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
