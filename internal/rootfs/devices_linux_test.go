package rootfs

import (
	"os"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/testutil"
)

// The fast path for the default devices must give exactly what the general
// path did: 0666 character devices owned by root, whatever the umask, and
// a node already in the way is replaced.
func TestCreateDefaultDevices(t *testing.T) {
	testutil.RequiresRoot(t)
	root := t.TempDir()
	devDir := filepath.Join(root, "dev")
	if err := os.Mkdir(devDir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Something already at a device's name is replaced, as before.
	if err := os.WriteFile(filepath.Join(devDir, "null"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	rootF, err := os.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer rootF.Close()
	dev, err := os.Open(devDir)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	old := unix.Umask(0o077)
	defer unix.Umask(old)
	if err := createDefaultDevices(&Config{Spec: &specs.Spec{}}, rootF, dev); err != nil {
		t.Fatalf("createDefaultDevices: %v", err)
	}
	if got := unix.Umask(0o077); got != 0o077 {
		t.Errorf("umask left at %#o, want it restored to 077", got)
	}
	for _, d := range defaultDevices {
		var st unix.Stat_t
		p := filepath.Join(root, d.Path)
		if err := unix.Lstat(p, &st); err != nil {
			t.Errorf("%s: %v", d.Path, err)
			continue
		}
		if st.Mode != unix.S_IFCHR|0o666 {
			t.Errorf("%s: mode %#o, want %#o", d.Path, st.Mode, unix.S_IFCHR|0o666)
		}
		if st.Rdev != unix.Mkdev(uint32(d.Major), uint32(d.Minor)) {
			t.Errorf("%s: rdev %#x, want %d:%d", d.Path, st.Rdev, d.Major, d.Minor)
		}
		if st.Uid != 0 || st.Gid != 0 {
			t.Errorf("%s: owner %d:%d, want 0:0", d.Path, st.Uid, st.Gid)
		}
	}
}

func TestNewNodesNeedChown(t *testing.T) {
	dir := t.TempDir()
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	uid, gid := os.Geteuid(), os.Getegid()
	tests := []struct {
		name     string
		uid, gid int
		setgid   bool
		want     bool
	}{
		{"our own ids", uid, gid, false, false},
		{"another uid", uid + 1, gid, false, true},
		{"another gid", uid, gid + 1, false, true},
		// A set-group-ID directory passes on its group, here ours.
		{"set-group-ID directory", uid, gid, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mode := os.FileMode(0o755)
			if tt.setgid {
				mode |= os.ModeSetgid
			}
			if err := os.Chmod(dir, mode); err != nil {
				t.Fatal(err)
			}
			got, err := newNodesNeedChown(fd, tt.uid, tt.gid)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("newNodesNeedChown = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDevSymlinks(t *testing.T) {
	dir := t.TempDir()
	// An existing entry is left alone, as symlinkInRoot did.
	if err := os.Symlink("elsewhere", filepath.Join(dir, "fd")); err != nil {
		t.Fatal(err)
	}
	dev, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	if err := devSymlinks(dev); err != nil {
		t.Fatalf("devSymlinks: %v", err)
	}
	for name, want := range map[string]string{"fd": "elsewhere", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2", "ptmx": "pts/ptmx"} {
		if got, err := os.Readlink(filepath.Join(dir, name)); err != nil || got != want {
			t.Errorf("%s -> %q (%v), want %q", name, got, err, want)
		}
	}
}
