package snapshottest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/berth-dev/berth/internal/snapshot"
	"golang.org/x/sys/unix"
)

// deletePath deletes p below an active snapshot's dir the way an unpacker
// does for s: an overlayfs whiteout (a 0/0 character device, which hides the
// name in every lower layer) or, for a copying driver, a real deletion.
func deletePath(t *testing.T, s snapshot.Snapshotter, dir, p string) {
	t.Helper()
	full := filepath.Join(dir, p)
	if !s.OverlayWhiteouts() {
		if err := os.RemoveAll(full); err != nil {
			t.Fatal(err)
		}
		return
	}
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mknod(full, unix.S_IFCHR, 0); err != nil {
		t.Fatalf("whiteout %s: %v", full, err)
	}
}
