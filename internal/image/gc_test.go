package image

import (
	"context"
	"maps"
	"slices"
	"testing"

	"github.com/berth-dev/berth/internal/archive"
)

// sharing builds two images whose first layer is the same blob.
func sharing(t *testing.T) (a, b testImage) {
	base := layer{comp: archive.Gzip, entries: []entry{dir("etc/"), file("etc/os-release", "ID=test")}}
	a = buildImage(t, "a", []layer{base, {comp: archive.Gzip, entries: []entry{file("a", "only in a")}}}, nil)
	b = buildImage(t, "b", []layer{base, {comp: archive.Zstd, entries: []entry{file("b", "only in b")}}}, nil)
	if a.layers[0].Digest != b.layers[0].Digest {
		t.Fatal("base layers differ")
	}
	return a, b
}

func TestGCKeepsSharedAndKeptSnapshots(t *testing.T) {
	forEachDriver(t, testGC)
}

func testGC(t *testing.T, d driver) {
	s := openStore(t, t.TempDir(), d)
	ctx := context.Background()
	a, b := sharing(t)
	f := newFetcher(a, b)
	imgA, imgB := fetch(t, s, f, a), fetch(t, s, f, b)
	if err := s.Tag(ctx, "a:1", imgA); err != nil {
		t.Fatal(err)
	}
	if err := s.Tag(ctx, "b:1", imgB); err != nil {
		t.Fatal(err)
	}
	// A container on image a, and the leftover of an unpack that died.
	if _, err := s.sn.Prepare(ctx, "ctr", imgA.ChainID.String(), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.sn.Prepare(ctx, "extract-dead-x", "", nil); err != nil {
		t.Fatal(err)
	}
	// The bytes reclaimed are the file system's to count (an empty
	// directory takes a block on ext4, none on tmpfs): what matters is
	// that the snapshot is gone.
	if _, err := s.GC(ctx, func(k string) bool { return k == "ctr" }); err != nil {
		t.Fatalf("gc: %v", err)
	}
	if _, ok := snapshots(t, s)["extract-dead-x"]; ok {
		t.Error("dead unpack survived gc")
	}
	if _, err := s.Delete(ctx, "a:1", false, nil); err != nil {
		t.Fatal(err)
	}

	keepCtr := func(k string) bool { return k == "ctr" }
	if _, err := s.GC(ctx, keepCtr); err != nil {
		t.Fatal(err)
	}
	wantSnaps := []string{"ctr", a.chain[0].String(), a.chain[1].String(), b.chain[1].String()}
	if got := slices.Sorted(maps.Keys(snapshots(t, s))); !slices.Equal(got, slices.Sorted(slices.Values(wantSnaps))) {
		t.Errorf("snapshots with ctr kept = %v, want %v", got, wantSnaps)
	}
	wantBlobs := slices.Sorted(maps.Keys(b.blobs))
	if got := slices.Sorted(maps.Keys(blobs(t, s))); !slices.Equal(got, wantBlobs) {
		t.Errorf("blobs = %v, want image b's %v", got, wantBlobs)
	}

	// The container is gone: its snapshot and image a's top layer go too;
	// the layer b shares stays.
	n, err := s.GC(ctx, nil)
	if err != nil || n <= 0 {
		t.Fatalf("gc = %d, %v", n, err)
	}
	wantSnaps = []string{b.chain[0].String(), b.chain[1].String()}
	if got := slices.Sorted(maps.Keys(snapshots(t, s))); !slices.Equal(got, slices.Sorted(slices.Values(wantSnaps))) {
		t.Errorf("snapshots = %v, want %v", got, wantSnaps)
	}
	if got := slices.Sorted(maps.Keys(blobs(t, s))); !slices.Equal(got, wantBlobs) {
		t.Errorf("blobs = %v, want %v", got, wantBlobs)
	}
	r, err := s.load()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := r.Layers[a.chain[1]]; ok {
		t.Error("size of a removed layer still recorded")
	}
	// What is left is whole: a re-fetch of b finds everything.
	before := f.total.Load()
	fetch(t, s, f, b)
	if f.total.Load() != before {
		t.Error("re-fetch after gc downloaded blobs")
	}
	if _, err := s.GC(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if got := len(snapshots(t, s)); got != 2 {
		t.Errorf("%d snapshots after an idle gc, want 2", got)
	}
}
