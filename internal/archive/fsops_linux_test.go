package archive

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
	"golang.org/x/sys/unix"
)

func TestFsopsFor(t *testing.T) {
	for _, tc := range []struct {
		path string
		raw  bool
	}{
		{"/dev/shm", true}, // tmpfs (a test's own directory may sit on anything)
		{"/proc", false},   // not a disk filesystem
		{"/sys", false},
	} {
		fd, err := unix.Open(tc.path, unix.O_PATH|unix.O_DIRECTORY, 0)
		if err != nil {
			t.Skipf("%s: %v", tc.path, err)
		}
		if got := fsopsFor(fd).raw; got != tc.raw {
			var st unix.Statfs_t
			_ = unix.Fstatfs(fd, &st)
			t.Errorf("%s (fs type %#x): raw %v, want %v", tc.path, st.Type, got, tc.raw)
		}
		unix.Close(fd)
	}
}

// TestFsopsModes runs every operation both ways: same results, errors that
// compare equal to unix's.
func TestFsopsModes(t *testing.T) {
	testutil.RequiresRoot(t) // fchown
	for _, ops := range []fsops{{raw: false}, {raw: true}} {
		dir := t.TempDir()
		dfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := ops.mkdirat(dfd, "d", 0o700); err != nil {
			t.Fatal(err)
		}
		if err := ops.mkdirat(dfd, "d", 0o700); err != unix.EEXIST {
			t.Errorf("raw=%v: second mkdirat = %v, want EEXIST", ops.raw, err)
		}
		fd, err := ops.openat(dfd, "f", unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ops.openat(dfd, "f", unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o600); err != unix.EEXIST {
			t.Errorf("raw=%v: second openat = %v, want EEXIST", ops.raw, err)
		}
		if _, err := (fdWriter{fd, ops}).Write([]byte("hello")); err != nil {
			t.Fatal(err)
		}
		if err := ops.fchown(fd, 1000, 1000); err != nil {
			t.Fatal(err)
		}
		if err := ops.fchmod(fd, 0o4751); err != nil {
			t.Fatal(err)
		}
		ts := [2]unix.Timespec{{Sec: 1500000000}, {Sec: 1600000000, Nsec: 5}}
		if err := ops.futimens(fd, &ts); err != nil {
			t.Fatal(err)
		}
		if err := ops.close(fd); err != nil {
			t.Fatal(err)
		}
		if err := ops.close(fd); err != unix.EBADF {
			t.Errorf("raw=%v: second close = %v, want EBADF", ops.raw, err)
		}
		unix.Close(dfd)
		var st unix.Stat_t
		if err := unix.Stat(filepath.Join(dir, "f"), &st); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(filepath.Join(dir, "f"))
		if string(b) != "hello" || st.Mode&0o7777 != 0o4751 || st.Uid != 1000 || st.Gid != 1000 || st.Mtim.Sec != 1600000000 || st.Mtim.Nsec != 5 || st.Atim.Sec != 1500000000 {
			t.Errorf("raw=%v: %q mode %o owner %d:%d mtime %d.%d atime %d", ops.raw, b, st.Mode&0o7777, st.Uid, st.Gid, st.Mtim.Sec, st.Mtim.Nsec, st.Atim.Sec)
		}
	}
}
