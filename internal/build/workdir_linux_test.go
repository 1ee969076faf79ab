package build

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
	"golang.org/x/sys/unix"
)

// TestReclaimStale: the work directory of a build that died (its lock
// free) is unmounted and removed by the next build; a live build's is
// left alone, and a build that ends leaves nothing.
func TestReclaimStale(t *testing.T) {
	testutil.RequiresRoot(t)
	b := &Builder{Root: t.TempDir()}
	tmp := filepath.Join(cacheDir(b.Root), "tmp")

	live, releaseLive, err := b.workDir()
	if err != nil {
		t.Fatal(err)
	}
	defer releaseLive()
	// A dead build: its lock file and directory, a mount on a
	// directory inside, no process holding the lock.
	dead := filepath.Join(tmp, "deadbeef00000000")
	mnt := filepath.Join(dead, "rootfs-1")
	if err := os.MkdirAll(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dead+".lock", nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH) })
	if err := os.WriteFile(filepath.Join(mnt, "f"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}

	next, releaseNext, err := b.workDir()
	if err != nil {
		t.Fatal(err)
	}
	if mounted(t, mnt) {
		t.Errorf("the dead build's mount %s is still there", mnt)
	}
	for _, p := range []string{dead, dead + ".lock"} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("%s left: %v", p, err)
		}
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("the live build's directory was reclaimed: %v", err)
	}
	releaseNext()
	if _, err := os.Lstat(next); !os.IsNotExist(err) {
		t.Errorf("a finished build left %s: %v", next, err)
	}
	if _, err := os.Lstat(next + ".lock"); !os.IsNotExist(err) {
		t.Errorf("a finished build left its lock: %v", err)
	}
}

func mounted(t *testing.T, p string) bool {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 4 && f[4] == p {
			return true
		}
	}
	return false
}
