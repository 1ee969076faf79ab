package engine

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"time"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/linux"
	"github.com/berth-dev/berth/internal/snapshot"
	"github.com/moby/moby/api/types/container"
	"golang.org/x/sys/unix"
)

// withRootfs calls fn with the container's root filesystem: the live mount
// of a running container, or the snapshot mounted on a private temporary
// directory (under the container lock, so no start races it).
func (e *Engine) withRootfs(ctx context.Context, ref string, fn func(c *Container, rootfs string) error) error {
	c, err := e.lookupContainer(ref)
	if err != nil {
		return err
	}
	if st := e.state(c); st.Status == "running" {
		return fn(c, e.rootfsDir(c.ID))
	}
	unlock, err := e.lockContainer(c.ID)
	if err != nil {
		return err
	}
	defer unlock()
	dir, err := os.MkdirTemp(e.opts.State, "cp-")
	if err != nil {
		return err
	}
	defer os.Remove(dir)
	mounts, err := e.snaps.Mounts(ctx, c.Snapshot)
	if err != nil {
		return err
	}
	if err := snapshot.MountAll(mounts, dir); err != nil {
		return fmt.Errorf("mount rootfs of %s: %w", c.Name, err)
	}
	defer func() { _ = snapshot.UnmountAll(dir) }()
	return fn(c, dir)
}

// openInRoot opens p inside rootfs with openat2 RESOLVE_IN_ROOT: every
// symlink (absolute ones and "..") is resolved as if rootfs were "/", so a
// container cannot point a path at the host. The final component is not
// followed when it is a symlink (cp copies links as links).
func openInRoot(rootfs, p string, follow bool) (*os.File, error) {
	root, err := unix.Open(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: rootfs, Err: err}
	}
	defer unix.Close(root)
	flags := uint64(unix.O_PATH | unix.O_CLOEXEC)
	if !follow {
		flags |= unix.O_NOFOLLOW
	}
	fd, err := linux.Openat2(root, p, &unix.OpenHow{Flags: flags, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS})
	if err != nil {
		if err == unix.ENOENT {
			return nil, fmt.Errorf("Could not find the file %s in container: %w", p, errdefs.ErrNotFound)
		}
		return nil, &os.PathError{Op: "openat2", Path: p, Err: err}
	}
	return os.NewFile(uintptr(fd), p), nil
}

func fdPath(f *os.File) string { return "/proc/self/fd/" + strconv.Itoa(int(f.Fd())) }

// StatPath describes a path in the container (Docker's PathStat).
func (e *Engine) StatPath(ctx context.Context, ref, p string) (container.PathStat, error) {
	var ps container.PathStat
	err := e.withRootfs(ctx, ref, func(c *Container, rootfs string) error {
		f, err := openInRoot(rootfs, p, false)
		if err != nil {
			return err
		}
		defer f.Close()
		var st unix.Stat_t
		if err := unix.Fstat(int(f.Fd()), &st); err != nil {
			return err
		}
		fi, err := os.Lstat(fdPath(f))
		if err != nil {
			return err
		}
		ps = container.PathStat{Name: path.Base(p), Size: st.Size, Mode: fi.Mode(), Mtime: time.Unix(st.Mtim.Unix())}
		if fi.Mode()&os.ModeSymlink != 0 {
			// An O_PATH fd of a symlink: readlinkat with an empty path.
			buf := make([]byte, 4096)
			n, _ := unix.Readlinkat(int(f.Fd()), "", buf)
			ps.LinkTarget = string(buf[:max(n, 0)])
		}
		// fi came from the /proc magic link; ask the fd itself for the type.
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			ps.Mode = os.ModeDir | os.FileMode(st.Mode&0o777)
		case unix.S_IFLNK:
			ps.Mode = os.ModeSymlink | os.FileMode(st.Mode&0o777)
		default:
			ps.Mode = os.FileMode(st.Mode & 0o777)
		}
		return nil
	})
	return ps, err
}

// CopyFrom writes a tar of p from the container: a directory as NAME/…,
// a file or symlink as one entry NAME (Docker's archive semantics).
func (e *Engine) CopyFrom(ctx context.Context, ref, p string, w io.Writer) error {
	return e.withRootfs(ctx, ref, func(c *Container, rootfs string) error {
		f, err := openInRoot(rootfs, p, false)
		if err != nil {
			return err
		}
		defer f.Close()
		var st unix.Stat_t
		if err := unix.Fstat(int(f.Fd()), &st); err != nil {
			return err
		}
		name := path.Base(path.Clean("/" + p))
		if name == "/" {
			name = "."
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			// The /proc/self/fd path names exactly the directory we
			// resolved; Tar never follows symlinks below it.
			return archive.Tar(ctx, w, fdPath(f), archive.TarOptions{Prefix: name})
		}
		tw := tar.NewWriter(w)
		hdr := &tar.Header{Name: name, Mode: int64(st.Mode & 0o7777), Uid: int(st.Uid), Gid: int(st.Gid),
			ModTime: time.Unix(st.Mtim.Unix()), Format: tar.FormatPAX}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFLNK:
			buf := make([]byte, 4096)
			n, err := unix.Readlinkat(int(f.Fd()), "", buf)
			if err != nil {
				return err
			}
			hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, string(buf[:n])
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
		case unix.S_IFREG:
			// Reopen the O_PATH handle for reading through its fd link:
			// the same inode, no second path walk.
			r, err := os.OpenFile(fdPath(f), os.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				return err
			}
			defer r.Close()
			hdr.Typeflag, hdr.Size = tar.TypeReg, st.Size
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			if _, err := io.CopyN(tw, r, st.Size); err != nil {
				return err
			}
		default:
			return fmt.Errorf("cp %s: not a regular file, directory or symlink: %w", p, errdefs.ErrNotSupported)
		}
		return tw.Close()
	})
}

// CopyTo extracts the tar stream r into directory dir of the container.
// Entries are resolved inside the container's root (archive.Apply uses
// RESOLVE_IN_ROOT), so symlinks in the container cannot redirect them.
func (e *Engine) CopyTo(ctx context.Context, ref, dir string, r io.Reader) error {
	return e.withRootfs(ctx, ref, func(c *Container, rootfs string) error {
		if c.HostConfig.ReadonlyRootfs {
			return fmt.Errorf("container rootfs is marked read-only: %w", errdefs.ErrPermission)
		}
		f, err := openInRoot(rootfs, dir, true)
		if err != nil {
			return err
		}
		defer f.Close()
		var st unix.Stat_t
		if err := unix.Fstat(int(f.Fd()), &st); err != nil {
			return err
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return fmt.Errorf("extraction point is not a directory: %s: %w", dir, errdefs.ErrInvalidArgument)
		}
		_, err = archive.Apply(ctx, fdPath(f), r, archive.ApplyOptions{Whiteouts: archive.WhiteoutsApply})
		return err
	})
}

// Diff lists the changes in the container's writable layer (Docker's
// A/C/D): entries of the upper directory, classified against the lowers.
func (e *Engine) Diff(ctx context.Context, ref string) ([]container.FilesystemChange, error) {
	c, err := e.lookupContainer(ref)
	if err != nil {
		return nil, err
	}
	upper, err := e.snaps.UpperDir(ctx, c.Snapshot)
	if err != nil {
		return nil, fmt.Errorf("diff %s: %w", c.Name, err)
	}
	lowers, err := e.snaps.LowerDirs(ctx, c.Snapshot)
	if err != nil {
		return nil, fmt.Errorf("diff %s: %w", c.Name, err)
	}
	return upperChanges(upper, lowers)
}
