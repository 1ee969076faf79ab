package volume

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
	"golang.org/x/sys/unix"
)

func TestPopulate(t *testing.T) {
	testutil.RequiresRoot(t)
	src, dst := t.TempDir(), filepath.Join(t.TempDir(), "_data")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Mkdir(dst, 0o755))
	must(os.MkdirAll(filepath.Join(src, "sub"), 0o750))
	must(os.WriteFile(filepath.Join(src, "sub", "f"), []byte("hello"), 0o640))
	must(os.Chown(filepath.Join(src, "sub"), 1000, 1001))
	must(os.Chown(filepath.Join(src, "sub", "f"), 1002, 1003))
	must(unix.Chmod(src, 0o1777))
	must(os.Chown(src, 33, 33))
	must(os.Link(filepath.Join(src, "sub", "f"), filepath.Join(src, "hard")))
	must(os.Symlink("/etc/passwd", filepath.Join(src, "link")))
	must(unix.Mkfifo(filepath.Join(src, "fifo"), 0o600))

	must(Populate(dst, src))
	for _, tc := range []struct {
		path     string
		mode     os.FileMode
		uid, gid uint32
	}{
		{"", os.ModeDir | os.ModeSticky | 0o777, 33, 33},
		{"sub", os.ModeDir | 0o750, 1000, 1001},
		{"sub/f", 0o640, 1002, 1003},
		{"link", os.ModeSymlink | 0o777, 0, 0},
		{"fifo", os.ModeNamedPipe | 0o600, 0, 0},
	} {
		st, err := os.Lstat(filepath.Join(dst, tc.path))
		if err != nil {
			t.Fatal(err)
		}
		var us unix.Stat_t
		must(unix.Lstat(filepath.Join(dst, tc.path), &us))
		uid, gid := us.Uid, us.Gid
		if st.Mode() != tc.mode || uid != tc.uid || gid != tc.gid {
			t.Errorf("%s: mode %v %d:%d, want %v %d:%d", tc.path, st.Mode(), uid, gid, tc.mode, tc.uid, tc.gid)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dst, "sub", "f")); err != nil || string(b) != "hello" {
		t.Fatalf("content: %q %v", b, err)
	}
	var a, b unix.Stat_t
	must(unix.Stat(filepath.Join(dst, "sub", "f"), &a))
	must(unix.Stat(filepath.Join(dst, "hard"), &b))
	if a.Ino != b.Ino {
		t.Error("hard link not preserved")
	}
	// A volume that already has content is left alone.
	must(os.WriteFile(filepath.Join(src, "new"), nil, 0o600))
	must(Populate(dst, src))
	if _, err := os.Lstat(filepath.Join(dst, "new")); !os.IsNotExist(err) {
		t.Fatalf("non-empty volume was filled again: %v", err)
	}
}

func TestMountOptions(t *testing.T) {
	testutil.RequiresRoot(t)
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	v, _, err := s.Create("tmp", CreateOptions{Options: map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=1m,nodev"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unmountData(v.Mountpoint) })
	for i := 0; i < 2; i++ { // the second Mount finds it mounted
		if err := s.Mount(v); err != nil {
			t.Fatal(err)
		}
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(v.Mountpoint, &fs); err != nil {
		t.Fatal(err)
	}
	if fs.Type != unix.TMPFS_MAGIC || fs.Blocks*uint64(fs.Bsize) != 1<<20 {
		t.Fatalf("statfs: type %x size %d", fs.Type, fs.Blocks*uint64(fs.Bsize))
	}
	if err := s.Remove("tmp"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(v.Mountpoint); !os.IsNotExist(err) {
		t.Fatalf("mountpoint left: %v", err)
	}
}
