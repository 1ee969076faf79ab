package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// PivotRoot makes rootfs the root of the calling process's mount namespace
// and detaches the old root.
//
// pivot_root(".", ".") stacks the old root on top of the new one at the
// same place, so no temporary directory has to be created inside the
// container's filesystem (which may be read-only). The old root is then the
// top mount at ".", and unmounting "." removes it. It is made a slave first
// so the lazy unmount cannot propagate to the host's mounts.
func PivotRoot(rootfs string) error {
	oldroot, err := unix.Open("/", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: "/", Err: err}
	}
	defer unix.Close(oldroot)
	newroot, err := unix.Open(rootfs, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: rootfs, Err: err}
	}
	defer unix.Close(newroot)
	if err := unix.Fchdir(newroot); err != nil {
		return &os.PathError{Op: "fchdir", Path: rootfs, Err: err}
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return &os.PathError{Op: "pivot_root", Path: rootfs, Err: err}
	}
	if err := unix.Fchdir(oldroot); err != nil {
		return &os.PathError{Op: "fchdir", Path: "old root", Err: err}
	}
	if err := unix.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return &os.PathError{Op: "make old root slave", Path: ".", Err: err}
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return &os.PathError{Op: "unmount old root", Path: ".", Err: err}
	}
	return unix.Chdir("/")
}

// MoveRoot is the fallback for roots that cannot be pivoted (an initramfs
// root, or noPivotRoot in the caller's options): the rootfs is moved over
// "/" and chroot'ed into. The host's tree stays reachable underneath, so it
// is weaker isolation and only used when asked for.
func MoveRoot(rootfs string) error {
	if err := unix.Chdir(rootfs); err != nil {
		return &os.PathError{Op: "chdir", Path: rootfs, Err: err}
	}
	if err := unix.Mount(rootfs, "/", "", unix.MS_MOVE, ""); err != nil {
		return &os.PathError{Op: "move rootfs", Path: rootfs, Err: err}
	}
	if err := unix.Chroot("."); err != nil {
		return &os.PathError{Op: "chroot", Path: rootfs, Err: err}
	}
	return unix.Chdir("/")
}

// Finalize applies the protections that act on the container's own view
// after the root switch: readonly paths, masked paths, sysctls and a
// read-only root. Paths here resolve inside the container's root, so a
// symlink can only lead to another place inside it.
func Finalize(s *specs.Spec) error {
	if s.Linux != nil {
		// Sysctls first: /proc/sys is usually among the read-only paths.
		if err := writeSysctls(s.Linux.Sysctl); err != nil {
			return err
		}
		for _, p := range s.Linux.ReadonlyPaths {
			if err := readonlyPath(p); err != nil {
				return fmt.Errorf("readonly path %s: %w", p, err)
			}
		}
		for _, p := range s.Linux.MaskedPaths {
			if err := maskPath(p); err != nil {
				return fmt.Errorf("masked path %s: %w", p, err)
			}
		}
	}
	if s.Root != nil && s.Root.Readonly {
		if err := setReadonly("/"); err != nil {
			return &os.PathError{Op: "remount root read-only", Path: "/", Err: err}
		}
	}
	return nil
}

// setReadonly makes the mount at path (its top mount, not those below it)
// read-only. mount_setattr sets just that flag and leaves the others, so
// unlike a MS_REMOUNT it needs no statfs to carry over the flags the mount
// already has (nosuid, nodev, noexec, atime; the kernel locks some of them
// in a user namespace, and dropping the others would weaken the mount).
func setReadonly(path string) error {
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}
	err := unix.MountSetattr(unix.AT_FDCWD, path, 0, &attr)
	if !errors.Is(err, unix.ENOSYS) {
		return err
	}
	// Before Linux 5.12.
	flags := uintptr(unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY)
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err == nil {
		flags |= lockedFlags(st.Flags)
	}
	return unix.Mount("", path, "", flags, "")
}

func readonlyPath(p string) error {
	if err := unix.Mount(p, p, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return err
	}
	return setReadonly(p)
}

func maskPath(p string) error {
	// A stat first, though the kernel would refuse to bind /dev/null onto
	// a directory (ENOTDIR) by itself: it refuses only after copying the
	// mount, and tearing the copy down costs ~90µs a directory here (the
	// unmount path waits for RCU) against a few for the stat.
	fi, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	if fi.IsDir() {
		return unix.Mount("tmpfs", p, "tmpfs", unix.MS_RDONLY, "")
	}
	err = unix.Mount("/dev/null", p, "", unix.MS_BIND, "")
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	return err
}

// writeSysctls writes each key under /proc/sys, refusing to write unless
// /proc/sys really is procfs: a hostile image could otherwise mount or link
// something else there and have us write host-visible files.
func writeSysctls(sysctl map[string]string) error {
	if len(sysctl) == 0 {
		return nil
	}
	var st unix.Statfs_t
	if err := unix.Statfs("/proc/sys", &st); err != nil {
		return &os.PathError{Op: "statfs", Path: "/proc/sys", Err: err}
	}
	if st.Type != unix.PROC_SUPER_MAGIC {
		return fmt.Errorf("sysctl: /proc/sys is not procfs")
	}
	for k, v := range sysctl {
		if strings.Contains(k, "..") {
			return fmt.Errorf("sysctl %q: invalid name", k)
		}
		path := filepath.Join("/proc/sys", strings.ReplaceAll(k, ".", "/"))
		f, err := os.OpenFile(path, os.O_WRONLY|unix.O_NOFOLLOW, 0)
		if err != nil {
			return fmt.Errorf("sysctl %s: %w", k, err)
		}
		_, err = f.WriteString(v)
		f.Close()
		if err != nil {
			return fmt.Errorf("sysctl %s=%s: %w", k, v, err)
		}
	}
	return nil
}
