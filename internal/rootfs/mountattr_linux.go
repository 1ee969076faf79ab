package rootfs

import (
	"golang.org/x/sys/unix"
)

// mountAttrFor turns the per-mount flags of an OCI mount's options into a
// mount_setattr(2) change. mount_setattr only touches the attributes it is
// told to, so flags the mount already has, including those the kernel
// locked on it in a user namespace, stay without a statfs to find them,
// unlike a MS_REMOUNT, which replaces the whole set.
//
// To match what a bind followed by MS_BIND|MS_REMOUNT gave before:
//   - read-only is cleared when not asked for (the remount cleared it);
//   - nosuid, nodev, noexec and nodiratime are only ever added (the
//     remount kept the source's, from statfs);
//   - noatime and strictatime replace the atime mode; relatime, the kernel
//     default, leaves the mode alone, so a noatime source stays noatime as
//     it did, and a locked atime mode is not a reason to fail.
func mountAttrFor(flags uintptr) unix.MountAttr {
	var a unix.MountAttr
	if flags&unix.MS_RDONLY != 0 {
		a.Attr_set |= unix.MOUNT_ATTR_RDONLY
	} else {
		a.Attr_clr |= unix.MOUNT_ATTR_RDONLY
	}
	for _, p := range []struct {
		ms   uintptr
		attr uint64
	}{
		{unix.MS_NOSUID, unix.MOUNT_ATTR_NOSUID},
		{unix.MS_NODEV, unix.MOUNT_ATTR_NODEV},
		{unix.MS_NOEXEC, unix.MOUNT_ATTR_NOEXEC},
		{unix.MS_NODIRATIME, unix.MOUNT_ATTR_NODIRATIME},
	} {
		if flags&p.ms != 0 {
			a.Attr_set |= p.attr
		}
	}
	switch {
	case flags&unix.MS_STRICTATIME != 0:
		a.Attr_clr |= unix.MOUNT_ATTR__ATIME
		a.Attr_set |= unix.MOUNT_ATTR_STRICTATIME
	case flags&unix.MS_NOATIME != 0:
		a.Attr_clr |= unix.MOUNT_ATTR__ATIME
		a.Attr_set |= unix.MOUNT_ATTR_NOATIME
	}
	return a
}

// setMountAttr applies attr to the mount whose root fd is (and, when
// recursive, to every mount below it) in one call. The kernel applies a
// recursive change to all of them or to none. ENOSYS (before 5.12) is
// returned as is for the caller's fallback.
func setMountAttr(fd int, attr unix.MountAttr, recursive bool) error {
	flags := unix.AT_EMPTY_PATH
	if recursive {
		flags |= unix.AT_RECURSIVE
	}
	return unix.MountSetattr(fd, "", uint(flags), &attr)
}
