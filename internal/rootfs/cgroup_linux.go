package rootfs

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/mountinfo"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

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
	err = unix.Mount("tmpfs", fdPath(target), "tmpfs", flags&^unix.MS_RDONLY, "mode=755")
	target.Close()
	if err != nil {
		return err
	}
	// target is the directory the tmpfs now covers; resolving dest again
	// (inside the root) lands on the tmpfs itself. Everything below is made
	// relative to it: it is empty and ours, so one mkdirat per hierarchy
	// replaces a resolution from the root.
	tmpfs, err := openInRoot(root, dest, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return err
	}
	defer tmpfs.Close()
	var bound []string // bind-mounted hierarchies, for the fallback below
	// mountHier mounts one hierarchy on a new directory name. Without a
	// cgroup namespace it binds src, or fallback when src does not exist.
	mountHier := func(name, fstype, data, src, fallback string) error {
		t, err := mkdirInDir(root, tmpfs, dest, name)
		if err != nil {
			return err
		}
		defer unix.Close(t)
		target := "/proc/self/fd/" + strconv.Itoa(t)
		if c.CgroupNS {
			return unix.Mount(fstype, target, fstype, flags, data)
		}
		// Flags come afterwards, for the whole tree at once.
		err = unix.Mount(src, target, "", unix.MS_BIND, "")
		if errors.Is(err, unix.ENOENT) && fallback != "" {
			err = unix.Mount(fallback, target, "", unix.MS_BIND, "")
		}
		if err != nil {
			return err
		}
		bound = append(bound, name)
		return nil
	}
	for _, h := range hier.v1 {
		name := filepath.Base(h.mount)
		// A hierarchy the runtime does not manage (name=systemd) has no
		// directory for the container: our process stays where it is in it.
		src, fallback := filepath.Join(h.mount, c.cgroupPath(h.path)), filepath.Join(h.mount, h.path)
		if fallback == src {
			fallback = ""
		}
		if err := mountHier(name, "cgroup", h.options, src, fallback); err != nil {
			return &os.PathError{Op: "mount cgroup", Path: filepath.Join(dest, name), Err: err}
		}
		// Co-mounted controllers ("cpu,cpuacct") get the usual symlinks.
		if ctrls := strings.Split(name, ","); len(ctrls) > 1 {
			for _, ctl := range ctrls {
				_ = unix.Symlinkat(name, int(tmpfs.Fd()), ctl)
			}
		}
	}
	if hier.v2Mount != "" {
		src := filepath.Join(hier.v2Mount, c.cgroupPath(hier.v2Path))
		if err := mountHier("unified", "cgroup2", "", src, ""); err != nil {
			return &os.PathError{Op: "mount cgroup2", Path: filepath.Join(dest, "unified"), Err: err}
		}
	}
	return setCgroupTreeFlags(tmpfs, bound, flags)
}

// mkdirInDir creates name in dir (the cgroup tmpfs, resolved inside root
// as dest) and returns an O_PATH descriptor for it. The name is a single
// component taken from the host's mount table; anything already there (two
// hierarchies with the same base name) goes through mkdirAllInRoot as
// before, so a symlink is followed only inside the root.
func mkdirInDir(root, dir *os.File, dest, name string) (int, error) {
	if name == "" || name == "." || name == ".." || strings.Contains(name, "/") {
		return -1, &os.PathError{Op: "mkdir", Path: filepath.Join(dest, name), Err: unix.EINVAL}
	}
	if err := unix.Mkdirat(int(dir.Fd()), name, 0o755); err != nil {
		if !errors.Is(err, unix.EEXIST) {
			return -1, &os.PathError{Op: "mkdir", Path: filepath.Join(dest, name), Err: err}
		}
		f, err := mkdirAllInRoot(root, filepath.Join(dest, name), 0o755)
		if err != nil {
			return -1, err
		}
		// Detach the descriptor from f, which would close it.
		fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
		f.Close()
		return fd, err
	}
	fd, err := unix.Openat(int(dir.Fd()), name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: filepath.Join(dest, name), Err: err}
	}
	return fd, nil
}

// setCgroupTreeFlags gives the cgroup tmpfs and every hierarchy on it the
// mount's flags (read-only, nosuid, ...) with one recursive mount_setattr
// on the tmpfs. Fresh cgroup mounts (a cgroup namespace) already have
// them; the binds and, for "ro", the tmpfs itself do not.
//
// A recursive mount_setattr is all or nothing. Before Linux 5.12 (ENOSYS),
// or when it refuses a change the kernel locked (EPERM: an atime mode set
// in a more privileged namespace), each bind and then the tmpfs get a
// remount, as they used to.
func setCgroupTreeFlags(tmpfs *os.File, bound []string, flags uintptr) error {
	err := setMountAttr(int(tmpfs.Fd()), mountAttrFor(flags), true)
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EPERM) {
		return &os.PathError{Op: "mount_setattr", Path: tmpfs.Name(), Err: err}
	}
	flags &^= unix.MS_REMOUNT | unix.MS_BIND | unix.MS_REC
	if flags != 0 {
		for _, name := range bound {
			// Opening by name crosses into the bind mounted on it.
			fd, err := unix.Openat(int(tmpfs.Fd()), name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				return &os.PathError{Op: "open", Path: name, Err: err}
			}
			err = remountBind(fd, flags)
			unix.Close(fd)
			if err != nil {
				return &os.PathError{Op: "remount bind", Path: name, Err: err}
			}
		}
	}
	if flags&unix.MS_RDONLY != 0 {
		return unix.Mount("", fdPath(tmpfs), "", unix.MS_REMOUNT|unix.MS_BIND|flags, "")
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
	self, err := readProcFile("/proc/self/cgroup")
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
	mi, err := readProcFile("/proc/self/mountinfo")
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
		mp := mountinfo.Unescape(f[4])
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

// readProcFile reads a procfs file with plain read(2)s into one buffer.
// os.ReadFile costs more syscalls for the same bytes (fcntl for the
// poller, fstat for a size that procfs reports as 0, then 512-byte first
// reads), and the init reads the mount table on every start.
func readProcFile(path string) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	buf := make([]byte, 0, 16<<10)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := unix.Read(fd, buf[len(buf):cap(buf)])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: path, Err: err}
		}
		if n == 0 {
			return buf, nil
		}
		buf = buf[:len(buf)+n]
	}
}
