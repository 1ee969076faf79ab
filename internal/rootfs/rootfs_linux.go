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
	if err := makeParentPrivate(c.Rootfs); err != nil {
		return err
	}
	return nil
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
	data, err := os.ReadFile("/proc/self/mountinfo")
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
		mp := unescapeMountinfo(f[4])
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

func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
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
	if devIsTmpfs {
		if err := createDefaultDevices(c, root); err != nil {
			return err
		}
	}
	if c.Spec.Linux != nil {
		for _, d := range c.Spec.Linux.Devices {
			if err := createDevice(c, root, d); err != nil {
				return fmt.Errorf("device %s: %w", d.Path, err)
			}
		}
	}
	if devIsTmpfs {
		if err := devSymlinks(root); err != nil {
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
		attr := &unix.MountAttr{Attr_set: opts.recAttrSet}
		if err := unix.MountSetattr(int(target.Fd()), "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, attr); err != nil {
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
	// A remount must keep flags the kernel locked on the source mount (in a
	// user namespace nosuid/nodev/noexec/ro cannot be cleared), so add them.
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(fresh.Fd()), &st); err == nil {
		flags |= lockedFlags(st.Flags)
	}
	if err := unix.Mount("", fdPath(fresh), "", unix.MS_BIND|unix.MS_REMOUNT|flags, ""); err != nil {
		return &os.PathError{Op: "remount bind", Path: src, Err: err}
	}
	return nil
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

// mountCgroup mounts the container's view of the cgroup hierarchies. With a
// cgroup namespace the kernel itself roots each hierarchy at the
// container's cgroup; without one we bind-mount the container's own
// directories so it cannot see or change its siblings.
func mountCgroup(c *Config, root *os.File, m *specs.Mount, dest string, opts mountOptions) error {
	hier, err := readCgroupHierarchies()
	if err != nil {
		return err
	}
	flags := opts.flags
	if len(hier.v1) == 0 {
		// Pure cgroup v2 host.
		target, err := mkdirAllInRoot(root, dest, 0o755)
		if err != nil {
			return err
		}
		defer target.Close()
		if c.CgroupNS {
			return unix.Mount("cgroup2", fdPath(target), "cgroup2", flags, "")
		}
		return bindMount(filepath.Join(hier.v2Mount, c.cgroupPath(hier.v2Path)), target, unix.MS_REC, flags)
	}
	// v1 or hybrid: a tmpfs with one directory per hierarchy.
	target, err := mkdirAllInRoot(root, dest, 0o755)
	if err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", fdPath(target), "tmpfs", flags&^unix.MS_RDONLY, "mode=755"); err != nil {
		target.Close()
		return err
	}
	target.Close()
	for _, h := range hier.v1 {
		sub := filepath.Join(dest, filepath.Base(h.mount))
		t, err := mkdirAllInRoot(root, sub, 0o755)
		if err != nil {
			return err
		}
		if c.CgroupNS {
			err = unix.Mount("cgroup", fdPath(t), "cgroup", flags, h.options)
		} else {
			src := filepath.Join(h.mount, c.cgroupPath(h.path))
			if _, serr := os.Stat(src); serr != nil {
				// A hierarchy the runtime does not manage (name=systemd):
				// our process stays where it is in it.
				src = filepath.Join(h.mount, h.path)
			}
			err = bindMount(src, t, 0, flags)
		}
		t.Close()
		if err != nil {
			return &os.PathError{Op: "mount cgroup", Path: sub, Err: err}
		}
		// Co-mounted controllers ("cpu,cpuacct") get the usual symlinks.
		if ctrls := strings.Split(filepath.Base(h.mount), ","); len(ctrls) > 1 {
			for _, ctl := range ctrls {
				_ = symlinkInRoot(root, filepath.Join(dest, ctl), filepath.Base(h.mount))
			}
		}
	}
	if hier.v2Mount != "" {
		sub := filepath.Join(dest, "unified")
		t, err := mkdirAllInRoot(root, sub, 0o755)
		if err != nil {
			return err
		}
		if c.CgroupNS {
			err = unix.Mount("cgroup2", fdPath(t), "cgroup2", flags, "")
		} else {
			err = bindMount(filepath.Join(hier.v2Mount, c.cgroupPath(hier.v2Path)), t, 0, flags)
		}
		t.Close()
		if err != nil {
			return &os.PathError{Op: "mount cgroup2", Path: sub, Err: err}
		}
	}
	if flags&unix.MS_RDONLY != 0 {
		t, err := openInRoot(root, dest, unix.O_PATH)
		if err != nil {
			return err
		}
		defer t.Close()
		return unix.Mount("", fdPath(t), "", unix.MS_REMOUNT|unix.MS_BIND|flags, "")
	}
	return nil
}

func (c *Config) cgroupPath(current string) string {
	if c.CgroupPath != "" {
		return c.CgroupPath
	}
	return current
}

type cgroupHierarchy struct {
	mount   string // host mount point, e.g. /sys/fs/cgroup/memory
	path    string // our cgroup inside it, from /proc/self/cgroup
	options string // mount data for a fresh mount, e.g. "memory"
}

type cgroupHierarchies struct {
	v1      []cgroupHierarchy
	v2Mount string
	v2Path  string
}

func readCgroupHierarchies() (*cgroupHierarchies, error) {
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	paths := map[string]string{} // controller list -> path
	for _, line := range strings.Split(strings.TrimSpace(string(self)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) == 3 {
			paths[parts[1]] = parts[2]
		}
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	h := &cgroupHierarchies{}
	for _, line := range strings.Split(string(mi), "\n") {
		f := strings.Fields(line)
		i := 0
		for i < len(f) && f[i] != "-" {
			i++
		}
		if i+3 >= len(f) {
			continue
		}
		fstype, super := f[i+1], f[i+3]
		mp := unescapeMountinfo(f[4])
		switch fstype {
		case "cgroup2":
			h.v2Mount, h.v2Path = mp, paths[""]
		case "cgroup":
			var ctrls []string
			for _, o := range strings.Split(super, ",") {
				if o == "rw" || o == "ro" || strings.HasPrefix(o, "release_agent") || o == "clone_children" || o == "xattr" || o == "noprefix" || o == "cpuset_v2_mode" || o == "nsdelegate" || o == "favordynmods" {
					continue
				}
				ctrls = append(ctrls, o)
			}
			key := strings.Join(ctrls, ",")
			p, ok := paths[key]
			if !ok {
				continue
			}
			h.v1 = append(h.v1, cgroupHierarchy{mount: mp, path: p, options: key})
		}
	}
	return h, nil
}

func symlinkInRoot(root *os.File, path, target string) error {
	dir, err := mkdirAllInRoot(root, filepath.Dir(path), 0o755)
	if err != nil {
		return err
	}
	defer dir.Close()
	err = unix.Symlinkat(target, int(dir.Fd()), filepath.Base(path))
	if errors.Is(err, unix.EEXIST) {
		return nil
	}
	return err
}

var defaultDevices = []specs.LinuxDevice{
	{Path: "/dev/null", Type: "c", Major: 1, Minor: 3},
	{Path: "/dev/zero", Type: "c", Major: 1, Minor: 5},
	{Path: "/dev/full", Type: "c", Major: 1, Minor: 7},
	{Path: "/dev/random", Type: "c", Major: 1, Minor: 8},
	{Path: "/dev/urandom", Type: "c", Major: 1, Minor: 9},
	{Path: "/dev/tty", Type: "c", Major: 5, Minor: 0},
}

func createDefaultDevices(c *Config, root *os.File) error {
	mode := os.FileMode(0o666)
	zero := uint32(0)
	for _, d := range defaultDevices {
		d.FileMode, d.UID, d.GID = &mode, &zero, &zero
		if err := createDevice(c, root, d); err != nil {
			return fmt.Errorf("device %s: %w", d.Path, err)
		}
	}
	return nil
}

func createDevice(c *Config, root *os.File, d specs.LinuxDevice) error {
	dest := d.Path
	if !filepath.IsAbs(dest) {
		dest = "/" + dest
	}
	if c.UserNS {
		// mknod is not permitted in a user namespace: share the host node.
		src := fmt.Sprintf("/dev/char/%d:%d", d.Major, d.Minor)
		if d.Type == "b" {
			src = fmt.Sprintf("/dev/block/%d:%d", d.Major, d.Minor)
		}
		if _, err := os.Stat(src); err != nil && d.Path != "" {
			src = d.Path
		}
		t, err := createFileInRoot(root, dest)
		if err != nil {
			return err
		}
		defer t.Close()
		return bindMount(src, t, 0, 0)
	}
	dir, err := mkdirAllInRoot(root, filepath.Dir(dest), 0o755)
	if err != nil {
		return err
	}
	defer dir.Close()
	var typ uint32
	switch d.Type {
	case "c", "u":
		typ = unix.S_IFCHR
	case "b":
		typ = unix.S_IFBLK
	case "p":
		typ = unix.S_IFIFO
	default:
		return fmt.Errorf("unknown device type %q", d.Type)
	}
	perm := uint32(0o666)
	if d.FileMode != nil {
		perm = uint32(d.FileMode.Perm())
	}
	name := filepath.Base(dest)
	_ = unix.Unlinkat(int(dir.Fd()), name, 0)
	dev := unix.Mkdev(uint32(d.Major), uint32(d.Minor))
	if err := unix.Mknodat(int(dir.Fd()), name, typ|perm, int(dev)); err != nil {
		return &os.PathError{Op: "mknod", Path: dest, Err: err}
	}
	// mknod honours the umask; set the exact mode the spec asked for.
	if err := unix.Fchmodat(int(dir.Fd()), name, perm, 0); err != nil {
		return &os.PathError{Op: "chmod", Path: dest, Err: err}
	}
	uid, gid := 0, 0
	if d.UID != nil {
		uid = int(*d.UID)
	}
	if d.GID != nil {
		gid = int(*d.GID)
	}
	if err := unix.Fchownat(int(dir.Fd()), name, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "chown", Path: dest, Err: err}
	}
	return nil
}

func devSymlinks(root *os.File) error {
	links := [][2]string{
		{"/proc/self/fd", "/dev/fd"},
		{"/proc/self/fd/0", "/dev/stdin"},
		{"/proc/self/fd/1", "/dev/stdout"},
		{"/proc/self/fd/2", "/dev/stderr"},
		{"pts/ptmx", "/dev/ptmx"},
	}
	if _, err := os.Stat("/proc/kcore"); err == nil {
		links = append(links, [2]string{"/proc/kcore", "/dev/core"})
	}
	for _, l := range links {
		if err := symlinkInRoot(root, l[1], l[0]); err != nil {
			return &os.PathError{Op: "symlink", Path: l[1], Err: err}
		}
	}
	return nil
}
