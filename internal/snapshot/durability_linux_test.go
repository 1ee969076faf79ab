package snapshot_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/snapshot"
)

// TestActiveRecordsApart checks the durability split of the store: a
// container's snapshot (prepare, remove) never rewrites the fsynced
// metadata.json, a commit does, and losing active.json (a power cut
// tearing the file that is written without fsync) loses only active
// snapshots, never a committed layer.
func TestActiveRecordsApart(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s, err := snapshot.NewNative(root)
	if err != nil {
		t.Fatal(err)
	}
	meta := filepath.Join(root, "native", "metadata.json")
	active := filepath.Join(root, "native", "active.json")
	read := func() string {
		b, err := os.ReadFile(meta)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	if _, err := s.Prepare(ctx, "layer-tmp", "", nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, "layer", "layer-tmp", ""); err != nil {
		t.Fatal(err)
	}
	committed := read()

	steps := []struct {
		name string
		do   func() error
	}{
		{"prepare a container snapshot", func() error { _, err := s.Prepare(ctx, "ctr", "layer", nil); return err }},
		{"prepare another", func() error { _, err := s.Prepare(ctx, "ctr2", "layer", nil); return err }},
		{"remove one", func() error { return s.Remove(ctx, "ctr2") }},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got := read(); got != committed {
			t.Fatalf("%s rewrote metadata.json:\n%s\nwant\n%s", st.name, got, committed)
		}
	}
	if _, err := s.Stat(ctx, "ctr"); err != nil {
		t.Fatalf("active snapshot not visible: %v", err)
	}

	// A torn active.json: the active record is gone, the layer stays.
	if err := os.WriteFile(active, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(ctx, "ctr"); !errdefs.IsNotFound(err) {
		t.Fatalf("stat of a lost active snapshot: %v, want NotFound", err)
	}
	if info, err := s.Stat(ctx, "layer"); err != nil || info.Kind != snapshot.KindCommitted {
		t.Fatalf("committed layer after losing active.json: %+v, %v", info, err)
	}
	// Its directory is an orphan that Cleanup removes, and ids go on.
	if err := s.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Prepare(ctx, "ctr3", "layer", nil); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(filepath.Join(root, "native", "snapshots"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 2 {
		t.Fatalf("snapshot directories after cleanup and a new prepare: %d, want 2 (layer, ctr3)", len(ents))
	}
}

// TestFirstPrepareNoFsync: a fresh store's first Prepare writes only
// active.json (no fsynced metadata.json: there is nothing committed to
// keep), and a store holding only active snapshots reopens with its
// driver.
func TestFirstPrepareNoFsync(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s, err := snapshot.NewNative(root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Prepare(ctx, "first", "", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "native", "metadata.json")); !os.IsNotExist(err) {
		t.Fatalf("metadata.json after the first Prepare: %v, want none", err)
	}
	again, err := snapshot.New(root)
	if err != nil {
		t.Fatal(err)
	}
	if again.Driver() != "native" {
		t.Fatalf("reopened as %s, want native", again.Driver())
	}
	if info, err := again.Stat(ctx, "first"); err != nil || info.Kind != snapshot.KindActive {
		t.Fatalf("Stat first = %+v, %v", info, err)
	}
	if err := again.Commit(ctx, "layer", "first", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "native", "metadata.json")); err != nil {
		t.Fatalf("metadata.json after the first Commit: %v", err)
	}
}
