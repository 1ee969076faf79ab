package snapshot

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth/internal/mountinfo"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func mountAll(mounts []specs.Mount, target string) error {
	for i, m := range mounts {
		if err := mountOne(m, target); err != nil {
			if i > 0 {
				err = errors.Join(err, unmountAll(target))
			}
			return fmt.Errorf("mount %s on %s: %w", m.Type, target, err)
		}
	}
	return nil
}

func mountOne(m specs.Mount, target string) error {
	if m.Type == "overlay" {
		return mountOverlay(m.Source, m.Options, target)
	}
	flags, prop, data := parseMountOptions(m.Options)
	if flags&unix.MS_BIND != 0 {
		if err := unix.Mount(m.Source, target, "", flags&(unix.MS_BIND|unix.MS_REC), ""); err != nil {
			return &os.PathError{Op: "mount bind " + m.Source, Path: target, Err: err}
		}
		// The bind itself ignores every other flag; a remount applies them.
		if rest := flags &^ (unix.MS_BIND | unix.MS_REC); rest != 0 {
			if err := unix.Mount("", target, "", unix.MS_REMOUNT|unix.MS_BIND|rest, ""); err != nil {
				_ = unix.Unmount(target, unix.MNT_DETACH)
				return &os.PathError{Op: "remount", Path: target, Err: err}
			}
		}
	} else if err := unix.Mount(m.Source, target, m.Type, flags, data); err != nil {
		return &os.PathError{Op: "mount " + m.Type, Path: target, Err: err}
	}
	if prop != 0 {
		if err := unix.Mount("", target, "", prop, ""); err != nil {
			return &os.PathError{Op: "mount propagation", Path: target, Err: err}
		}
	}
	return nil
}

var mountFlags = map[string]struct {
	clear bool
	flag  uintptr
}{
	"ro": {false, unix.MS_RDONLY}, "rw": {true, unix.MS_RDONLY},
	"bind": {false, unix.MS_BIND}, "rbind": {false, unix.MS_BIND | unix.MS_REC},
	"nosuid": {false, unix.MS_NOSUID}, "suid": {true, unix.MS_NOSUID},
	"nodev": {false, unix.MS_NODEV}, "dev": {true, unix.MS_NODEV},
	"noexec": {false, unix.MS_NOEXEC}, "exec": {true, unix.MS_NOEXEC},
	"noatime": {false, unix.MS_NOATIME}, "relatime": {false, unix.MS_RELATIME},
	"strictatime": {false, unix.MS_STRICTATIME}, "nodiratime": {false, unix.MS_NODIRATIME},
	"sync": {false, unix.MS_SYNCHRONOUS}, "async": {true, unix.MS_SYNCHRONOUS},
}

var propagationFlags = map[string]uintptr{
	"private": unix.MS_PRIVATE, "rprivate": unix.MS_PRIVATE | unix.MS_REC,
	"slave": unix.MS_SLAVE, "rslave": unix.MS_SLAVE | unix.MS_REC,
	"shared": unix.MS_SHARED, "rshared": unix.MS_SHARED | unix.MS_REC,
	"unbindable": unix.MS_UNBINDABLE, "runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
}

// parseMountOptions splits fstab-style options into mount(2) flags,
// propagation flags (which need their own mount call) and filesystem data.
func parseMountOptions(opts []string) (flags, prop uintptr, data string) {
	var rest []string
	for _, o := range opts {
		if f, ok := mountFlags[o]; ok {
			if f.clear {
				flags &^= f.flag
			} else {
				flags |= f.flag
			}
		} else if p, ok := propagationFlags[o]; ok {
			prop |= p
		} else {
			rest = append(rest, o)
		}
	}
	return flags, prop, strings.Join(rest, ",")
}

// mountOverlay mounts overlayfs with the new mount API (fsopen, fsconfig,
// fsmount, move_mount). The classic mount(2) passes all options in one page,
// which caps an image at a few dozen layers; fsconfig takes each layer as
// its own "lowerdir+" parameter (Linux 6.8), so the chain length is limited
// only by overlayfs itself (500 layers). The kernel also explains a refused
// configuration in the fs context's log, which we return instead of a bare
// EINVAL.
func mountOverlay(source string, options []string, target string) error {
	fd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if errors.Is(err, unix.ENOSYS) {
		flags, _, data := parseMountOptions(options)
		if err := unix.Mount(source, target, "overlay", flags, data); err != nil {
			return &os.PathError{Op: "mount overlay", Path: target, Err: err}
		}
		return nil
	}
	if err != nil {
		return &os.PathError{Op: "fsopen overlay", Path: target, Err: err}
	}
	defer unix.Close(fd)
	fail := func(op string, err error) error {
		if msg := fsContextLog(fd); msg != "" {
			return fmt.Errorf("%s: %w (%s)", op, err, msg)
		}
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := unix.FsconfigSetString(fd, "source", source); err != nil {
		return fail("fsconfig source", err)
	}
	var attrs int
	for _, o := range options {
		key, val, hasVal := strings.Cut(o, "=")
		switch {
		case key == "lowerdir" && hasVal:
			if err := setLowerdirs(fd, val); err != nil {
				return fail("fsconfig lowerdir", err)
			}
		case o == "ro":
			attrs |= unix.MOUNT_ATTR_RDONLY
		case o == "rw":
		case o == "nosuid":
			attrs |= unix.MOUNT_ATTR_NOSUID
		case o == "nodev":
			attrs |= unix.MOUNT_ATTR_NODEV
		case o == "noexec":
			attrs |= unix.MOUNT_ATTR_NOEXEC
		case hasVal:
			if err := unix.FsconfigSetString(fd, key, val); err != nil {
				return fail("fsconfig "+o, err)
			}
		default:
			if err := unix.FsconfigSetFlag(fd, key); err != nil {
				return fail("fsconfig "+o, err)
			}
		}
	}
	if err := unix.FsconfigCreate(fd); err != nil {
		return fail("create overlay", err)
	}
	mfd, err := unix.Fsmount(fd, unix.FSMOUNT_CLOEXEC, attrs)
	if err != nil {
		return fail("fsmount overlay", err)
	}
	defer unix.Close(mfd)
	if err := unix.MoveMount(mfd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return &os.PathError{Op: "move_mount overlay", Path: target, Err: err}
	}
	return nil
}

// setLowerdirs passes each layer as "lowerdir+", top first; kernels before
// 6.8 lack it and get the whole list as one "lowerdir" string.
func setLowerdirs(fd int, list string) error {
	for i, dir := range splitLowerdirs(list) {
		err := unix.FsconfigSetString(fd, "lowerdir+", dir)
		if err == nil {
			continue
		}
		if i == 0 && errors.Is(err, unix.EINVAL) {
			_ = fsContextLog(fd) // drop the "unknown parameter" message
			return unix.FsconfigSetString(fd, "lowerdir", list)
		}
		return fmt.Errorf("layer %s: %w", dir, err)
	}
	return nil
}

// fsContextLog drains the messages the kernel queued on an fs context.
func fsContextLog(fd int) string {
	var msgs []string
	buf := make([]byte, 4096)
	for {
		n, err := unix.Read(fd, buf)
		if err != nil || n <= 0 {
			break
		}
		msgs = append(msgs, strings.TrimSpace(string(buf[:n])))
	}
	return strings.Join(msgs, "; ")
}

func unmountAll(target string) error {
	abs, err := filepath.Abs(target)
	if err != nil {
		return err
	}
	if resolved, err := filepath.EvalSymlinks(abs); err == nil {
		abs = resolved
	}
	return mountinfo.UnmountUnder(abs)
}
