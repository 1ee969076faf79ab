package monitor

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
	"golang.org/x/sys/unix"
)

// TestExitCommandLock: the exit command runs unless another process holds
// the lock (an attached `run --rm`, which removes the container itself).
func TestExitCommandLock(t *testing.T) {
	tests := []struct {
		name    string
		lock    string // "", "free", "held", "removed"
		wantRan bool
	}{
		{name: "no lock configured", lock: "", wantRan: true},
		{name: "lock free", lock: "free", wantRan: true},
		{name: "lock held shared", lock: "held", wantRan: false},
		// The attached `run --rm` removed the container (and the file)
		// and let go before the monitor looked.
		{name: "removed meanwhile", lock: "removed", wantRan: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			marker := filepath.Join(dir, "ran")
			m := &monitor{r: newReaper(), o: Options{ExitCommand: []string{"/bin/sh", "-c", "touch " + marker}}}
			if tc.lock != "" {
				m.o.ExitCommandLock = filepath.Join(dir, "autoremove.lock")
			}
			m.openExitLock() // as at the monitor's start
			if tc.lock == "held" {
				// Another open file description, as another process's.
				f, err := os.Open(m.o.ExitCommandLock)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				if err := unix.Flock(int(f.Fd()), unix.LOCK_SH); err != nil {
					t.Fatal(err)
				}
			}
			if tc.lock == "removed" {
				if err := os.Remove(m.o.ExitCommandLock); err != nil {
					t.Fatal(err)
				}
			}
			m.runExitCommand()
			_, err := os.Stat(marker)
			if ran := err == nil; ran != tc.wantRan {
				t.Errorf("exit command ran: %v, want %v", ran, tc.wantRan)
			}
		})
	}
}

// TestUnmountRootfs: every mount at or below the rootfs goes, stacked and
// nested ones included; a sibling directory with the same prefix stays.
func TestUnmountRootfs(t *testing.T) {
	testutil.RequiresRoot(t)
	dir := t.TempDir()
	rootfs := filepath.Join(dir, "rootfs")
	sibling := filepath.Join(dir, "rootfs2")
	for _, d := range []string{rootfs, sibling} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mount := func(target string) {
		t.Helper()
		if err := unix.Mount("tmpfs", target, "tmpfs", 0, ""); err != nil {
			t.Fatalf("mount %s: %v", target, err)
		}
		t.Cleanup(func() { _ = unix.Unmount(target, unix.MNT_DETACH) })
	}
	mount(rootfs)
	mount(rootfs) // stacked
	if err := os.Mkdir(filepath.Join(rootfs, "proc"), 0o755); err != nil {
		t.Fatal(err)
	}
	mount(filepath.Join(rootfs, "proc")) // nested
	mount(sibling)
	if err := unmountRootfs(rootfs); err != nil {
		t.Fatal(err)
	}
	mounted := func(p string) bool {
		var a, b unix.Stat_t
		if unix.Stat(p, &a) != nil || unix.Stat(filepath.Dir(p), &b) != nil {
			return false
		}
		return a.Dev != b.Dev
	}
	if mounted(rootfs) {
		t.Error("rootfs still mounted")
	}
	if !mounted(sibling) {
		t.Error("the sibling rootfs2 was unmounted too")
	}
}
