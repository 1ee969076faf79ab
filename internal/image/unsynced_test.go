package image

import (
	"context"
	"errors"
	"testing"

	"github.com/berth-dev/berth/internal/snapshot"
)

// pretendBoot makes the store see boot id until the test ends.
func pretendBoot(t *testing.T, id string) {
	t.Helper()
	prev := bootID
	bootID = func() (string, error) { return id, nil }
	t.Cleanup(func() { bootID = prev })
}

// powerCut makes every background flush fail until restored, so pulls stay
// unsettled, as if the power went before their syncfs.
func powerCut(t *testing.T) (restore func()) {
	t.Helper()
	prev := flushFS
	flushFS = func(string) error { return errors.New("no flush: the test cuts the power first") }
	restore = func() { flushFS = prev }
	t.Cleanup(restore)
	return restore
}

func TestUnsyncedPullAfterReboot(t *testing.T) {
	forEachDriver(t, testUnsyncedPullAfterReboot)
}

// Image a is pulled and flushed, image b (sharing a's base layer) is pulled
// but never flushed; then the machine "reboots". b's own layer is gone and
// b is not listed; a and the shared base layer are untouched; pulling b
// again fetches only what was discarded.
func testUnsyncedPullAfterReboot(t *testing.T, d driver) {
	ctx := context.Background()
	root := t.TempDir()
	pretendBoot(t, "boot-1")
	s := openStore(t, root, d)
	a, b := sharing(t)
	f := newFetcher(a, b)
	imgA := fetch(t, s, f, a)
	s.Flush()
	if r, _ := s.load(); len(r.Unsynced) != 0 {
		t.Fatalf("a flushed pull left ledger entries: %+v", r.Unsynced)
	}
	restore := powerCut(t)
	imgB := fetch(t, s, f, b)
	s.Flush()
	if err := s.Tag(ctx, "a:1", imgA); err != nil {
		t.Fatal(err)
	}
	if err := s.Tag(ctx, "b:1", imgB); err != nil {
		t.Fatal(err)
	}
	r, err := s.load()
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Unsynced) != 1 || len(r.Unsynced[0].Snapshots) != 1 || r.Unsynced[0].Snapshots[0] != b.chain[1] ||
		len(r.Unsynced[0].Blobs) != 1 || r.Unsynced[0].Blobs[0] != b.layers[1].Digest {
		t.Fatalf("ledger = %+v, want b's own layer only (blob %s, snapshot %s)", r.Unsynced, b.layers[1].Digest, b.chain[1])
	}

	// Same boot: the unsettled pull is valid, nothing is discarded.
	s = openStore(t, root, d)
	s.Flush()
	if _, err := s.Get(ctx, "b:1"); err != nil {
		t.Fatalf("same boot: b: %v", err)
	}
	restore()

	pretendBoot(t, "boot-2")
	s = openStore(t, root, d)
	s.Flush()
	if got := s.Discarded(); len(got) != 1 || got[0] != "docker.io/library/b:1" {
		t.Errorf("Discarded() = %v, want b:1", got)
	}
	list, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID != imgA.ID {
		t.Fatalf("after reboot: images %+v, want only a", list)
	}
	snaps := snapshots(t, s)
	for _, c := range a.chain {
		if snaps[c.String()] != snapshot.KindCommitted {
			t.Errorf("a's snapshot %s lost: %v", c, snaps)
		}
	}
	if _, ok := snaps[b.chain[1].String()]; ok {
		t.Errorf("b's unsynced snapshot survived the reboot: %v", snaps)
	}
	bl := blobs(t, s)
	if bl[b.layers[1].Digest] || !bl[b.layers[0].Digest] {
		t.Errorf("blobs after reboot: %v; want b's own layer gone, the shared one kept", bl)
	}
	if r, _ := s.load(); len(r.Unsynced) != 0 {
		t.Errorf("ledger after recovery: %+v", r.Unsynced)
	}

	before := f.fetched(b.layers[1].Digest)
	again := fetch(t, s, f, b)
	s.Flush()
	if again.ChainID != b.top() {
		t.Errorf("re-pull = %+v", again)
	}
	if n := f.fetched(b.layers[1].Digest) - before; n != 1 {
		t.Errorf("re-pull fetched b's layer %d times, want 1", n)
	}
	if n := f.fetched(b.layers[0].Digest); n != 1 {
		t.Errorf("shared base fetched %d times, want 1 (it survived)", n)
	}
	if r, _ := s.load(); len(r.Unsynced) != 0 {
		t.Errorf("ledger after a flushed re-pull: %+v", r.Unsynced)
	}
}

// A container's writable snapshot on an image whose layers were lost goes
// with them: its lower layers cannot be trusted.
func TestUnsyncedPullContainerAfterReboot(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d driver) {
		ctx := context.Background()
		root := t.TempDir()
		pretendBoot(t, "boot-1")
		s := openStore(t, root, d)
		powerCut(t)
		ti := threeLayers(t, nil)
		img := fetch(t, s, newFetcher(ti), ti)
		s.Flush()
		if _, err := s.sn.Prepare(ctx, "ctr", img.ChainID.String(), nil); err != nil {
			t.Fatal(err)
		}
		pretendBoot(t, "boot-2")
		s = openStore(t, root, d)
		if list, _ := s.List(ctx); len(list) != 0 {
			t.Errorf("images after reboot: %+v", list)
		}
		if snaps := snapshots(t, s); len(snaps) != 0 {
			t.Errorf("snapshots after reboot: %v", snaps)
		}
		if bl := blobs(t, s); len(bl) != 2 { // the manifest and config were flushed
			t.Errorf("blobs after reboot: %v, want manifest and config", bl)
		}
	})
}

// A pull whose process exited before its flush is settled by a store
// opened later in the same boot, once the entry is settleAge old; after
// that a reboot discards nothing.
func TestUnsyncedPullSettledLater(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d driver) {
		ctx := context.Background()
		root := t.TempDir()
		pretendBoot(t, "boot-1")
		s := openStore(t, root, d)
		restore := powerCut(t)
		ti := threeLayers(t, nil)
		img := fetch(t, s, newFetcher(ti), ti)
		s.Flush()
		restore()

		s = openStore(t, root, d) // too young to settle
		s.Flush()
		if r, _ := s.load(); len(r.Unsynced) != 1 {
			t.Fatalf("a young entry was settled: %+v", r.Unsynced)
		}
		prev := settleAge
		settleAge = 0
		t.Cleanup(func() { settleAge = prev })
		s = openStore(t, root, d)
		s.Flush()
		if r, _ := s.load(); len(r.Unsynced) != 0 {
			t.Fatalf("ledger after a later open in the same boot: %+v", r.Unsynced)
		}

		pretendBoot(t, "boot-2")
		s = openStore(t, root, d)
		if got := s.Discarded(); len(got) != 0 {
			t.Errorf("Discarded() = %v after a settled pull", got)
		}
		if list, _ := s.List(ctx); len(list) != 1 || list[0].ID != img.ID {
			t.Errorf("images after reboot: %+v", list)
		}
		if n := len(snapshots(t, s)); n != len(ti.chain) {
			t.Errorf("%d snapshots after reboot, want %d", n, len(ti.chain))
		}
	})
}
