package snapshot_test

import (
	"testing"

	"github.com/berth-dev/berth/internal/snapshot"
	"github.com/berth-dev/berth/internal/snapshot/snapshottest"
)

func TestOverlay(t *testing.T) {
	snapshottest.RunSuite(t, func(t *testing.T, root string) snapshot.Snapshotter {
		s, err := snapshot.NewOverlay(root)
		if err != nil {
			t.Skipf("overlayfs is not available here: %v", err)
		}
		return s
	})
}

func TestNative(t *testing.T) {
	snapshottest.RunSuite(t, func(t *testing.T, root string) snapshot.Snapshotter {
		s, err := snapshot.NewNative(root)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
