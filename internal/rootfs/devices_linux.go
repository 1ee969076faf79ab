package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

var defaultDevices = []specs.LinuxDevice{
	{Path: "/dev/null", Type: "c", Major: 1, Minor: 3},
	{Path: "/dev/zero", Type: "c", Major: 1, Minor: 5},
	{Path: "/dev/full", Type: "c", Major: 1, Minor: 7},
	{Path: "/dev/random", Type: "c", Major: 1, Minor: 8},
	{Path: "/dev/urandom", Type: "c", Major: 1, Minor: 9},
	{Path: "/dev/tty", Type: "c", Major: 5, Minor: 0},
}

// createDefaultDevices creates the default devices, 0666 root:root, in dev,
// the /dev tmpfs just mounted.
//
// This runs on every start, so it does the least the kernel needs: with
// the umask cleared mknod gives the exact mode, and on a fresh tmpfs
// nodes come out owned by our fsuid and fsgid (or, in a set-group-ID
// directory, its group), checked once, so normally neither chmod nor chown
// is needed. In a user namespace nodes are bind-mounted from the host
// instead (createDevice).
func createDefaultDevices(c *Config, root, dev *os.File) error {
	mode := os.FileMode(0o666)
	zero := uint32(0)
	if c.UserNS {
		for _, d := range defaultDevices {
			d.FileMode, d.UID, d.GID = &mode, &zero, &zero
			if err := createDevice(c, root, dev, d); err != nil {
				return fmt.Errorf("device %s: %w", d.Path, err)
			}
		}
		return nil
	}
	chown, err := newNodesNeedChown(int(dev.Fd()), 0, 0)
	if err != nil {
		return err
	}
	// The umask is per process; nothing else in the init creates files
	// while it is cleared.
	old := unix.Umask(0)
	defer unix.Umask(old)
	for _, d := range defaultDevices {
		name := filepath.Base(d.Path)
		dnum := int(unix.Mkdev(uint32(d.Major), uint32(d.Minor)))
		if err := mknodReplace(int(dev.Fd()), name, unix.S_IFCHR|uint32(mode), dnum); err != nil {
			return &os.PathError{Op: "mknod", Path: d.Path, Err: err}
		}
		if chown {
			if err := unix.Fchownat(int(dev.Fd()), name, 0, 0, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return &os.PathError{Op: "chown", Path: d.Path, Err: err}
			}
		}
	}
	return nil
}

// newNodesNeedChown reports whether a node created in dir would be owned by
// someone other than uid:gid: it gets our fsuid and fsgid (in Go, always
// the effective ids), or dir's group when dir is set-group-ID.
func newNodesNeedChown(dir int, uid, gid int) (bool, error) {
	var st unix.Stat_t
	if err := unix.Fstat(dir, &st); err != nil {
		return false, &os.PathError{Op: "fstat", Path: "/dev", Err: err}
	}
	newGid := os.Getegid()
	if st.Mode&unix.S_ISGID != 0 {
		newGid = int(st.Gid)
	}
	return os.Geteuid() != uid || newGid != gid, nil
}

// mknodReplace creates a node, replacing whatever non-directory is at name
// (a default device the spec lists again). Unlinking only after EEXIST
// spares the unlink on the usual empty tmpfs.
func mknodReplace(dir int, name string, mode uint32, dev int) error {
	err := unix.Mknodat(dir, name, mode, dev)
	if errors.Is(err, unix.EEXIST) {
		_ = unix.Unlinkat(dir, name, 0)
		err = unix.Mknodat(dir, name, mode, dev)
	}
	return err
}

// createDevice creates one of the spec's devices anywhere in the root.
// dev, if not nil, is the /dev tmpfs, used for a device directly in /dev
// instead of resolving /dev again.
func createDevice(c *Config, root, dev *os.File, d specs.LinuxDevice) error {
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
	dir := dev
	if dir == nil || filepath.Dir(dest) != "/dev" {
		var err error
		dir, err = mkdirAllInRoot(root, filepath.Dir(dest), 0o755)
		if err != nil {
			return err
		}
		defer dir.Close()
	}
	perm := uint32(0o666)
	if d.FileMode != nil {
		perm = uint32(d.FileMode.Perm())
	}
	name := filepath.Base(dest)
	dnum := int(unix.Mkdev(uint32(d.Major), uint32(d.Minor)))
	if err := mknodReplace(int(dir.Fd()), name, typ|perm, dnum); err != nil {
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

// devSymlinks makes the standard links in dev, the /dev tmpfs.
func devSymlinks(dev *os.File) error {
	links := [][2]string{
		{"/proc/self/fd", "fd"},
		{"/proc/self/fd/0", "stdin"},
		{"/proc/self/fd/1", "stdout"},
		{"/proc/self/fd/2", "stderr"},
		{"pts/ptmx", "ptmx"},
	}
	if _, err := os.Stat("/proc/kcore"); err == nil {
		links = append(links, [2]string{"/proc/kcore", "core"})
	}
	for _, l := range links {
		err := unix.Symlinkat(l[0], int(dev.Fd()), l[1])
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return &os.PathError{Op: "symlink", Path: "/dev/" + l[1], Err: err}
		}
	}
	return nil
}
