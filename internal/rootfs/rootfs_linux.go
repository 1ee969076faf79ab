// Package rootfs builds a container's filesystem view inside its new mount
// namespace: the bind-mounted root, the spec's mounts, /dev, and the switch
// into the root with pivot_root(2).
//
// Every mount destination is resolved inside the rootfs by the kernel
// (openat2 with RESOLVE_IN_ROOT, see resolve_linux.go), and the mount is
// made onto the resulting file descriptor through /proc/self/fd. A symlink
// in a hostile image therefore cannot redirect a mount onto the host, even
// if the image changes between the check and the mount.
package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/mountinfo"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Config is what Setup needs beyond the spec.
type Config struct {
	Spec   *specs.Spec
	Rootfs string // absolute host path of the root filesystem
	// UserNS is true when the container has its own user namespace: device
	// nodes cannot be created there, so they are bind-mounted from the host.
	UserNS bool
	// CgroupNS is true when the container has its own cgroup namespace.
	CgroupNS bool
	// CgroupPath is the container's cgroup (the same in every hierarchy).
	// Without a cgroup namespace the cgroup mount binds these directories,
	// which exist before the process is moved into them.
	CgroupPath string
	// BeforeCgroup, if set, runs before a cgroup mount: the cgroup's
	// directories (and, for a cgroup namespace, the process's place in
	// them) may not exist earlier. The
	// runtime uses it to wait until the process is in its cgroup (and in
	// its cgroup namespace), so the rest of the mounts can proceed in
	// parallel with the cgroup placement.
	BeforeCgroup func() error
	// BeforeDevices, if set, runs before device nodes are created: the
	// devices cgroup's rules must be complete by then (a rule list is
	// written one rule at a time, starting with deny-all).
	BeforeDevices func() error
}

// PrepareRoot makes the rootfs a mount point of its own in the caller's
// (new) mount namespace, with the requested propagation. It must run before
// any other step.
func PrepareRoot(c *Config) error {
	prop, ok := mountPropagation(c.Spec.Linux.RootfsPropagation)
	if !ok {
		return fmt.Errorf("rootfsPropagation %q: unknown propagation", c.Spec.Linux.RootfsPropagation)
	}
	// Stop our mounts from propagating back to the host before touching
	// anything: the new namespace starts as a copy with shared peers.
	if err := unix.Mount("", "/", "", prop, ""); err != nil {
		return &os.PathError{Op: "mount propagation", Path: "/", Err: err}
	}
	// pivot_root needs the new root to be a mount point, and its parent must
	// not be shared, or the kernel refuses with EINVAL.
	if err := unix.Mount(c.Rootfs, c.Rootfs, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return &os.PathError{Op: "bind rootfs", Path: c.Rootfs, Err: err}
	}
	// A recursive slave, private or unbindable change above left no mount
	// in the namespace shared (and the bind just made copies the rootfs
	// parent's now unshared propagation), so there is nothing to look up.
	if !leavesNoSharedMount(prop) {
		if err := makeParentPrivate(c.Rootfs); err != nil {
			return err
		}
	}
	return nil
}

// leavesNoSharedMount reports whether applying prop to "/" leaves every
// mount in the namespace unshared: MS_REC carries the change to every mount
// under the root, and none of slave, private or unbindable keeps a mount in
// a peer group.
func leavesNoSharedMount(prop uintptr) bool {
	return prop&unix.MS_REC != 0 && prop&(unix.MS_SLAVE|unix.MS_PRIVATE|unix.MS_UNBINDABLE) != 0 && prop&unix.MS_SHARED == 0
}

// makeParentPrivate makes the mount holding path private if it is shared.
func makeParentPrivate(path string) error {
	mp, shared, err := parentMount(path)
	if err != nil {
		return err
	}
	if !shared {
		return nil
	}
	if err := unix.Mount("", mp, "", unix.MS_PRIVATE, ""); err != nil {
		return &os.PathError{Op: "make parent mount private", Path: mp, Err: err}
	}
	return nil
}

// parentMount finds the mount point containing dir's parent and whether it
// is shared, from /proc/self/mountinfo.
func parentMount(dir string) (string, bool, error) {
	data, err := readProcFile("/proc/self/mountinfo")
	if err != nil {
		return "", false, err
	}
	parent := filepath.Dir(dir)
	best, shared := "", false
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 7 {
			continue
		}
		mp := mountinfo.Unescape(f[4])
		if !(mp == "/" || parent == mp || strings.HasPrefix(parent, mp+"/")) || len(mp) < len(best) {
			continue
		}
		best, shared = mp, false
		for _, opt := range f[6:] {
			if opt == "-" {
				break
			}
			if strings.HasPrefix(opt, "shared:") {
				shared = true
			}
		}
	}
	if best == "" {
		best = "/"
	}
	return best, shared, nil
}

// MountAll performs the spec's mounts in order, then creates /dev's default
// devices, the spec's devices and the standard /dev symlinks.
func MountAll(c *Config) error {
	root, err := os.OpenFile(c.Rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer root.Close()

	devIsTmpfs := false
	for i := range c.Spec.Mounts {
		m := &c.Spec.Mounts[i]
		if err := mountOne(c, root, m); err != nil {
			return fmt.Errorf("mount %s (type %s) on %s: %w", m.Source, m.Type, m.Destination, err)
		}
		if filepath.Clean(m.Destination) == "/dev" && !isBind(m) {
			devIsTmpfs = true
		}
	}
	// /dev is a tmpfs we just mounted: one handle to it serves the
	// default devices, the spec's devices directly in it, and the symlinks.
	// Nothing mounts on /dev between here and the end.
	if c.BeforeDevices != nil && (devIsTmpfs || (c.Spec.Linux != nil && len(c.Spec.Linux.Devices) > 0)) {
		if err := c.BeforeDevices(); err != nil {
			return err
		}
	}
	var dev *os.File
	if devIsTmpfs {
		dev, err = openInRoot(root, "/dev", unix.O_PATH|unix.O_DIRECTORY)
		if err != nil {
			return err
		}
		defer dev.Close()
		if err := createDefaultDevices(c, root, dev); err != nil {
			return err
		}
	}
	if c.Spec.Linux != nil {
		for _, d := range c.Spec.Linux.Devices {
			if err := createDevice(c, root, dev, d); err != nil {
				return fmt.Errorf("device %s: %w", d.Path, err)
			}
		}
	}
	if devIsTmpfs {
		if err := devSymlinks(dev); err != nil {
			return err
		}
	}
	return nil
}

func isBind(m *specs.Mount) bool {
	if m.Type == "bind" {
		return true
	}
	for _, o := range m.Options {
		if o == "bind" || o == "rbind" {
			return true
		}
	}
	return false
}

// fdPath names an open file through procfs so mount(2) acts on exactly the
// inode we resolved, not on whatever a path would resolve to later.
func fdPath(f *os.File) string {
	return "/proc/self/fd/" + strconv.Itoa(int(f.Fd()))
}

func mountOne(c *Config, root *os.File, m *specs.Mount) error {
	opts := parseMountOptions(m.Options)
	dest := m.Destination
	if !filepath.IsAbs(dest) {
		dest = "/" + dest
	}
	switch {
	case opts.bind || m.Type == "bind":
		return mountBind(c, root, m, dest, opts)
	case m.Type == "cgroup" || m.Type == "cgroup2":
		if c.BeforeCgroup != nil {
			if err := c.BeforeCgroup(); err != nil {
				return err
			}
		}
		return mountCgroup(c, root, m, dest, opts)
	}

	target, err := mkdirAllInRoot(root, dest, 0o755)
	if err != nil {
		return err
	}
	defer target.Close()
	data := strings.Join(opts.data, ",")
	err = unix.Mount(m.Source, fdPath(target), m.Type, opts.flags, data)
	if err != nil && (m.Type == "sysfs" || m.Type == "mqueue") && errors.Is(err, unix.EPERM) && c.UserNS {
		// A user namespace may not mount sysfs without owning the network
		// namespace (or mqueue without the IPC one); fall back to the
		// host's view read-only, as runc does.
		src := "/sys"
		if m.Type == "mqueue" {
			src = "/dev/mqueue"
		}
		err = bindMount(src, target, unix.MS_REC, opts.flags|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC)
	}
	if err != nil {
		return err
	}
	return applyPropagation(target, opts)
}

func mountBind(c *Config, root *os.File, m *specs.Mount, dest string, opts mountOptions) error {
	src := m.Source
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	var target *os.File
	if fi.IsDir() {
		target, err = mkdirAllInRoot(root, dest, 0o755)
	} else {
		target, err = createFileInRoot(root, dest)
	}
	if err != nil {
		return err
	}
	defer target.Close()
	rec := uintptr(0)
	if opts.recursive {
		rec = unix.MS_REC
	}
	if err := bindMount(src, target, rec, opts.flags); err != nil {
		return err
	}
	if opts.recAttrSet != 0 {
		// target was opened before the bind and still names the covered
		// directory on the rootfs mount; the new mount tree is what a
		// fresh open of the path finds.
		fresh, err := reopenPath(target)
		if err != nil {
			return err
		}
		attr := &unix.MountAttr{Attr_set: opts.recAttrSet}
		err = unix.MountSetattr(int(fresh.Fd()), "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, attr)
		fresh.Close()
		if err != nil {
			return &os.PathError{Op: "mount_setattr", Path: dest, Err: err}
		}
	}
	return applyPropagation(target, opts)
}

// bindMount binds src onto target and then applies flags with a remount:
// the kernel ignores everything but MS_REC on the initial bind.
func bindMount(src string, target *os.File, rec, flags uintptr) error {
	if err := unix.Mount(src, fdPath(target), "", unix.MS_BIND|rec, ""); err != nil {
		return err
	}
	flags &^= unix.MS_REMOUNT | unix.MS_BIND | unix.MS_REC
	if flags == 0 {
		return nil
	}
	// Reopen: the earlier handle refers to the covered directory, not the
	// new mount on top of it.
	fresh, err := reopenPath(target)
	if err != nil {
		return err
	}
	defer fresh.Close()
	if err := remountBind(int(fresh.Fd()), flags); err != nil {
		return &os.PathError{Op: "remount bind", Path: src, Err: err}
	}
	return nil
}

// remountBind sets flags on the bind mount whose root fd is. A remount
// must keep flags the kernel locked on the source mount (in a user
// namespace nosuid/nodev/noexec/ro cannot be cleared), so add them.
func remountBind(fd int, flags uintptr) error {
	var st unix.Statfs_t
	if err := unix.Fstatfs(fd, &st); err == nil {
		flags |= lockedFlags(st.Flags)
	}
	return unix.Mount("", "/proc/self/fd/"+strconv.Itoa(fd), "", unix.MS_BIND|unix.MS_REMOUNT|flags, "")
}

func lockedFlags(statfsFlags int64) uintptr {
	var f uintptr
	for _, p := range []struct {
		st  int64
		flg uintptr
	}{
		{unix.ST_NOSUID, unix.MS_NOSUID},
		{unix.ST_NODEV, unix.MS_NODEV},
		{unix.ST_NOEXEC, unix.MS_NOEXEC},
		{unix.ST_NOATIME, unix.MS_NOATIME},
		{unix.ST_NODIRATIME, unix.MS_NODIRATIME},
		{unix.ST_RELATIME, unix.MS_RELATIME},
	} {
		if statfsFlags&p.st != 0 {
			f |= p.flg
		}
	}
	return f
}

// reopenPath opens the current top of the mount stack at f's path.
func reopenPath(f *os.File) (*os.File, error) {
	p, err := os.Readlink(fdPath(f))
	if err != nil {
		return nil, err
	}
	return os.OpenFile(p, unix.O_PATH|unix.O_CLOEXEC, 0)
}

func applyPropagation(target *os.File, opts mountOptions) error {
	if len(opts.propagation) == 0 {
		return nil
	}
	fresh, err := reopenPath(target)
	if err != nil {
		return err
	}
	defer fresh.Close()
	for _, p := range opts.propagation {
		if err := unix.Mount("", fdPath(fresh), "", p, ""); err != nil {
			return &os.PathError{Op: "mount propagation", Path: fdPath(fresh), Err: err}
		}
	}
	return nil
}

// createFileInRoot creates (if missing) a regular file at path inside root,
// never following a symlink out of it, and returns an O_PATH handle.
func createFileInRoot(root *os.File, path string) (*os.File, error) {
	path, err := resolveFileInRoot(root, path)
	if err != nil {
		return nil, err
	}
	dir, err := mkdirAllInRoot(root, filepath.Dir(path), 0o755)
	if err != nil {
		return nil, err
	}
	defer dir.Close()
	base := filepath.Base(path)
	fd, err := unix.Openat(int(dir.Fd()), base, unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_RDONLY, 0o644)
	if err == nil {
		unix.Close(fd)
	} else if !errors.Is(err, unix.EEXIST) && !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.ELOOP) && !errors.Is(err, unix.ENXIO) && !errors.Is(err, unix.EACCES) {
		return nil, &os.PathError{Op: "create mount target", Path: path, Err: err}
	}
	return openInRoot(root, path, unix.O_PATH)
}
