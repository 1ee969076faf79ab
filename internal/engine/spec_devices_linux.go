package engine

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/internal/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// hostDevices returns the device node at path, or every device node under
// it when it is a directory (symlinks are not followed below the top).
func hostDevices(path string) ([]specs.LinuxDevice, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		d, ok, err := deviceAt(path)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("%s is not a device node: %w", path, errdefs.ErrInvalidArgument)
		}
		return []specs.LinuxDevice{d}, nil
	}
	var out []specs.LinuxDevice
	err = filepath.WalkDir(path, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() || e.Type()&fs.ModeDevice == 0 {
			return nil
		}
		if d, ok, err := deviceAt(p); err == nil && ok {
			out = append(out, d)
		}
		return nil
	})
	return out, err
}

func deviceAt(path string) (specs.LinuxDevice, bool, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return specs.LinuxDevice{}, false, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	var typ string
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		typ = "c"
	case unix.S_IFBLK:
		typ = "b"
	default:
		return specs.LinuxDevice{}, false, nil
	}
	mode := os.FileMode(st.Mode & 0o777)
	uid, gid := st.Uid, st.Gid
	return specs.LinuxDevice{
		Path: path, Type: typ, Major: int64(unix.Major(st.Rdev)), Minor: int64(unix.Minor(st.Rdev)),
		FileMode: &mode, UID: &uid, GID: &gid,
	}, true, nil
}

// privilegedDevices is every device node of the host's /dev, as Docker gives
// a privileged container, minus what the container gets its own of: the
// pts and shm, mqueue trees, and the host's console.
func privilegedDevices() ([]specs.LinuxDevice, error) {
	var out []specs.LinuxDevice
	err := filepath.WalkDir("/dev", func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if p == "/dev" {
				return err
			}
			return nil
		}
		if e.IsDir() {
			switch filepath.Base(p) {
			case "pts", "shm", "mqueue", "fd", ".lxc", ".lxd-mounts", ".udev":
				return filepath.SkipDir
			}
			return nil
		}
		if p == "/dev/console" || e.Type()&fs.ModeDevice == 0 {
			return nil
		}
		if d, ok, err := deviceAt(p); err == nil && ok {
			out = append(out, d)
		}
		return nil
	})
	return out, err
}
