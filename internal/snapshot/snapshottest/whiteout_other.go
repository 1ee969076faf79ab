//go:build !linux

package snapshottest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/berth-dev/berth/internal/snapshot"
)

// deletePath: overlayfs whiteouts exist only on Linux.
func deletePath(t *testing.T, s snapshot.Snapshotter, dir, p string) {
	t.Helper()
	if s.OverlayWhiteouts() {
		t.Skip("overlay whiteouts need Linux")
	}
	if err := os.RemoveAll(filepath.Join(dir, p)); err != nil {
		t.Fatal(err)
	}
}
