package image

import (
	"bytes"
	"context"
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/snapshot"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// threeLayers has a whiteout and an opaque directory in its top layer and
// one layer of each compression.
func threeLayers(t *testing.T, mutate func(*ocispec.Image)) testImage {
	return buildImage(t, "three", threeLayerSpecs(), mutate)
}

func threeLayerSpecs() []layer {
	return []layer{
		{comp: archive.Gzip, entries: []entry{
			dir("etc/"), file("etc/a", "a1"), file("etc/b", "b1"),
			dir("opq/"), file("opq/old", "old"),
			dir("bin/"), file("bin/sh", "sh"), symlink("link", "etc/a"),
		}},
		{comp: archive.Zstd, entries: []entry{dir("etc/"), file("etc/a", "a2"), file("etc/c", "c2")}},
		{comp: archive.Uncompressed, entries: []entry{
			file("etc/.wh.b", ""), dir("opq/"), file("opq/.wh..wh..opq", ""), file("opq/new", "new"),
		}},
	}
}

func TestFetchUnpacksLayers(t *testing.T) {
	forEachDriver(t, testFetchUnpacksLayers)
}

func testFetchUnpacksLayers(t *testing.T, d driver) {
	s := openStore(t, t.TempDir(), d)
	ctx := context.Background()
	ti := threeLayers(t, nil)
	f := newFetcher(ti)

	var mu sync.Mutex
	actions := map[string][]string{}
	img, err := s.Fetch(ctx, FetchOptions{Fetcher: f, Manifest: ti.manifest, Parallel: 2, Progress: func(p Progress) {
		mu.Lock()
		defer mu.Unlock()
		actions[p.ID] = append(actions[p.ID], p.Action)
	}})
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	if img.ID != ti.config || img.ChainID != ti.top() || img.Target.Digest != ti.manifest.Digest {
		t.Fatalf("image = %+v, want ID %s chain %s", img, ti.config, ti.top())
	}
	if img.Platform.OS != "linux" || img.Platform.Architecture != "amd64" {
		t.Errorf("platform = %+v", img.Platform)
	}
	for _, l := range ti.layers {
		got := strings.Join(actions[shortID(l.Digest)], ",")
		for _, want := range []string{"Downloading", "Verifying Checksum", "Download complete", "Extracting", "Pull complete"} {
			if !strings.Contains(got, want) {
				t.Errorf("layer %s progress %q lacks %q", shortID(l.Digest), got, want)
			}
		}
	}
	for _, c := range ti.chain {
		if i, err := s.sn.Stat(ctx, c.String()); err != nil || i.Kind != snapshot.KindCommitted {
			t.Errorf("snapshot %s: %+v, %v", c, i, err)
		}
	}
	for d := range ti.blobs {
		if _, err := s.cs.Info(ctx, d); err != nil {
			t.Errorf("blob %s not stored: %v", d, err)
		}
	}
	for k, kind := range snapshots(t, s) {
		if kind != snapshot.KindCommitted {
			t.Errorf("active snapshot %s left behind", k)
		}
	}

	// The top chain, mounted, is the image's filesystem.
	if _, err := s.sn.Prepare(ctx, "ctr", img.ChainID.String(), nil); err != nil {
		t.Fatal(err)
	}
	mounts, err := s.sn.Mounts(ctx, "ctr")
	if err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(t.TempDir(), "rootfs")
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := snapshot.MountAll(mounts, target); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := snapshot.UnmountAll(target); err != nil {
			t.Errorf("unmount: %v", err)
		}
	})
	for _, tc := range []struct{ path, want string }{
		{"etc/a", "a2"}, {"etc/b", ""}, {"etc/c", "c2"}, {"opq/old", ""}, {"opq/new", "new"}, {"bin/sh", "sh"},
	} {
		b, err := os.ReadFile(filepath.Join(target, tc.path))
		switch {
		case tc.want == "" && !errors.Is(err, os.ErrNotExist):
			t.Errorf("%s: want deleted, got %q, %v", tc.path, b, err)
		case tc.want != "" && string(b) != tc.want:
			t.Errorf("%s = %q, %v; want %q", tc.path, b, err, tc.want)
		}
	}
	if l, err := os.Readlink(filepath.Join(target, "link")); err != nil || l != "etc/a" {
		t.Errorf("link -> %q, %v", l, err)
	}

	// A second fetch finds every layer and fetches none.
	before := f.total.Load()
	actions = map[string][]string{}
	if _, err := s.Fetch(ctx, FetchOptions{Fetcher: f, Manifest: ti.manifest, Progress: func(p Progress) {
		mu.Lock()
		defer mu.Unlock()
		actions[p.ID] = append(actions[p.ID], p.Action)
	}}); err != nil {
		t.Fatal(err)
	}
	if n := f.total.Load() - before; n != 0 {
		t.Errorf("second fetch fetched %d blobs", n)
	}
	for _, l := range ti.layers {
		if got := strings.Join(actions[shortID(l.Digest)], ","); got != "Already exists" {
			t.Errorf("layer %s progress on refetch = %q", shortID(l.Digest), got)
		}
	}
}

func TestFetchRejectsBadLayer(t *testing.T) {
	forEachDriver(t, testFetchRejectsBadLayer)
}

func testFetchRejectsBadLayer(t *testing.T, d driver) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		broken int // the layer whose snapshot must not exist
		setup  func(t *testing.T) (testImage, *memFetcher)
	}{
		{"compressed digest", 1, func(t *testing.T) (testImage, *memFetcher) {
			ti := threeLayers(t, nil)
			f := newFetcher(ti)
			f.corrupt[ti.layers[1].Digest] = true
			return ti, f
		}},
		{"diff ID", 2, func(t *testing.T) (testImage, *memFetcher) {
			ti := threeLayers(t, func(c *ocispec.Image) { c.RootFS.DiffIDs[2] = digest.FromString("not this layer") })
			return ti, newFetcher(ti)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t, t.TempDir(), d)
			ti, f := tc.setup(t)
			_, err := s.Fetch(ctx, FetchOptions{Fetcher: f, Manifest: ti.manifest})
			if !errdefs.IsInvalidArgument(err) {
				t.Fatalf("fetch error = %v, want invalid argument", err)
			}
			if imgs, err := s.List(ctx); err != nil || len(imgs) != 0 {
				t.Errorf("images after failed fetch: %+v, %v", imgs, err)
			}
			for k, kind := range snapshots(t, s) {
				if kind != snapshot.KindCommitted {
					t.Errorf("active snapshot %s left behind", k)
				}
				if k == ti.chain[tc.broken].String() {
					t.Errorf("snapshot of the bad layer was committed")
				}
			}
			if _, err := s.cs.Info(ctx, ti.layers[1].Digest); tc.broken == 1 && !errdefs.IsNotFound(err) {
				t.Errorf("corrupt blob stored: %v", err)
			}
			if _, err := s.GC(ctx, nil); err != nil {
				t.Fatalf("gc: %v", err)
			}
			if n := len(snapshots(t, s)); n != 0 {
				t.Errorf("%d snapshots after gc", n)
			}
			if b := blobs(t, s); len(b) != 0 {
				t.Errorf("blobs after gc: %v", b)
			}
		})
	}
}

// Two berth processes pulling one image at once: each opens its own stores
// on the same root (separate locks, as separate processes would have).
func TestFetchConcurrent(t *testing.T) {
	forEachDriver(t, testFetchConcurrent)
}

func testFetchConcurrent(t *testing.T, d driver) {
	root := t.TempDir()
	s1, s2 := openStore(t, root, d), openStore(t, root, d)
	ti := threeLayers(t, nil)
	f := newFetcher(ti)
	f.delay = 200 * 1000 // 200µs per 4 KiB read: long enough to overlap
	var wg sync.WaitGroup
	imgs := make([]Image, 2)
	errs := make([]error, 2)
	for i, s := range []*Store{s1, s2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			imgs[i], errs[i] = s.Fetch(context.Background(), FetchOptions{Fetcher: f, Manifest: ti.manifest})
		}()
	}
	wg.Wait()
	for i := range errs {
		if errs[i] != nil {
			t.Fatalf("fetch %d: %v", i, errs[i])
		}
	}
	if imgs[0].ID != imgs[1].ID || imgs[0].ChainID != ti.top() {
		t.Fatalf("images differ: %+v / %+v", imgs[0], imgs[1])
	}
	for _, l := range ti.layers {
		if n := f.fetched(l.Digest); n != 1 {
			t.Errorf("layer %s downloaded %d times, want once", shortID(l.Digest), n)
		}
	}
	for k, kind := range snapshots(t, s1) {
		if kind != snapshot.KindCommitted {
			t.Errorf("active snapshot %s left behind", k)
		}
	}
	if list, _ := s1.List(context.Background()); len(list) != 1 {
		t.Errorf("%d image records, want 1", len(list))
	}
}

func TestFetchRejectsBadMetadata(t *testing.T) {
	ctx := context.Background()
	index := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`)
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T) (ocispec.Descriptor, *memFetcher)
	}{
		{"corrupt manifest", func(t *testing.T) (ocispec.Descriptor, *memFetcher) {
			ti := threeLayers(t, nil)
			f := newFetcher(ti)
			f.corrupt[ti.manifest.Digest] = true
			return ti.manifest, f
		}},
		{"corrupt config", func(t *testing.T) (ocispec.Descriptor, *memFetcher) {
			ti := threeLayers(t, nil)
			f := newFetcher(ti)
			f.corrupt[ti.config] = true
			return ti.manifest, f
		}},
		{"index instead of manifest", func(t *testing.T) (ocispec.Descriptor, *memFetcher) {
			f := newFetcher()
			d := digest.FromBytes(index)
			f.blobs[d] = index
			return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: d, Size: int64(len(index))}, f
		}},
		{"more layers than diff IDs", func(t *testing.T) (ocispec.Descriptor, *memFetcher) {
			ti := threeLayers(t, func(c *ocispec.Image) { c.RootFS.DiffIDs = c.RootFS.DiffIDs[:2] })
			return ti.manifest, newFetcher(ti)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			desc, f := tc.setup(t)
			if _, err := s.Fetch(ctx, FetchOptions{Fetcher: f, Manifest: desc}); !errdefs.IsInvalidArgument(err) {
				t.Fatalf("fetch = %v, want invalid argument", err)
			}
			if n := len(snapshots(t, s)); n != 0 {
				t.Errorf("%d snapshots after a refused fetch", n)
			}
			if list, _ := s.List(ctx); len(list) != 0 {
				t.Errorf("images after a refused fetch: %v", list)
			}
		})
	}
}

func TestFetchEmptyImage(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	ti := buildImage(t, "scratch", nil, nil)
	img := fetch(t, s, newFetcher(ti), ti)
	if img.ChainID != "" || img.ID != ti.config {
		t.Fatalf("image = %+v", img)
	}
	in, err := s.Inspect(ctx, img)
	if err != nil || in.Size != 0 || len(in.RootFS.Layers) != 0 {
		t.Fatalf("inspect = %+v, %v", in, err)
	}
}

// bigLayerImage has one gzip layer above smallLayer (so that the pull
// inflates it with igzip where installed): 2 MiB of random bytes, which
// deflate stores, and a small file.
func bigLayerImage(t *testing.T, mutate func(*ocispec.Image)) (testImage, string) {
	rnd := rand.New(rand.NewSource(7))
	big := make([]byte, 2<<20)
	rnd.Read(big)
	ti := buildImage(t, "big", []layer{{comp: archive.Gzip, entries: []entry{
		dir("data/"), file("data/random", string(big)), file("data/small", "small"),
	}}}, mutate)
	if ti.layers[0].Size < smallLayer {
		t.Fatalf("layer of %d bytes is below smallLayer", ti.layers[0].Size)
	}
	return ti, string(big)
}

func TestFetchBigLayer(t *testing.T) {
	forEachDriver(t, testFetchBigLayer)
}

func testFetchBigLayer(t *testing.T, d driver) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		corrupt bool                 // the registry flips a byte of the layer
		mutate  func(*ocispec.Image) // nil: a valid image
		wantMsg string               // for an invalid image
	}{
		{name: "valid"},
		{name: "corrupt blob", corrupt: true, wantMsg: "digest mismatch"},
		{name: "wrong diff ID", mutate: func(c *ocispec.Image) { c.RootFS.DiffIDs[0] = digest.FromString("not this layer") },
			wantMsg: "does not match diff ID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t, t.TempDir(), d)
			ti, big := bigLayerImage(t, tc.mutate)
			f := newFetcher(ti)
			f.corrupt[ti.layers[0].Digest] = tc.corrupt
			img, err := s.Fetch(ctx, FetchOptions{Fetcher: f, Manifest: ti.manifest})
			if tc.wantMsg != "" {
				if !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), tc.wantMsg) {
					t.Fatalf("fetch error = %v, want invalid argument with %q", err, tc.wantMsg)
				}
				for k, kind := range snapshots(t, s) {
					t.Errorf("snapshot %s (%v) left after a failed fetch", k, kind)
				}
				if _, err := s.cs.Info(ctx, ti.layers[0].Digest); tc.corrupt && !errdefs.IsNotFound(err) {
					t.Errorf("corrupt blob stored: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("fetch: %v", err)
			}
			if _, err := s.sn.Prepare(ctx, "ctr", img.ChainID.String(), nil); err != nil {
				t.Fatal(err)
			}
			mounts, err := s.sn.Mounts(ctx, "ctr")
			if err != nil {
				t.Fatal(err)
			}
			target := t.TempDir()
			if err := snapshot.MountAll(mounts, target); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if err := snapshot.UnmountAll(target); err != nil {
					t.Errorf("unmount: %v", err)
				}
			})
			for name, want := range map[string]string{"data/random": big, "data/small": "small"} {
				b, err := os.ReadFile(filepath.Join(target, name))
				if err != nil || string(b) != want {
					t.Errorf("%s: %d bytes, %v; want %d bytes", name, len(b), err, len(want))
				}
			}
		})
	}
}

// TestFetchGivenManifest: the manifest bytes a caller already read
// (registry.Resolve) are used instead of a second request, and checked
// against the descriptor like fetched ones.
func TestFetchGivenManifest(t *testing.T) {
	ctx := context.Background()
	ti := threeLayers(t, nil)
	mb := ti.blobs[ti.manifest.Digest]

	s := newStore(t)
	f := newFetcher(ti)
	if _, err := s.Fetch(ctx, FetchOptions{Fetcher: f, Manifest: ti.manifest, ManifestBytes: mb}); err != nil {
		t.Fatal(err)
	}
	if n := f.fetched(ti.manifest.Digest); n != 0 {
		t.Errorf("manifest fetched %d times, want 0", n)
	}
	if !blobs(t, s)[ti.manifest.Digest] {
		t.Error("manifest not in the content store")
	}

	s = newStore(t)
	bad := bytes.Clone(mb)
	bad[len(bad)/2] ^= 0xff
	if _, err := s.Fetch(ctx, FetchOptions{Fetcher: newFetcher(ti), Manifest: ti.manifest, ManifestBytes: bad}); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("fetch with tampered manifest bytes = %v, want invalid argument", err)
	}
	if n := len(snapshots(t, s)); n != 0 {
		t.Errorf("%d snapshots after a refused fetch", n)
	}
}

// TestFetchNamed: a name and a repo digest given to Fetch land on the image
// in the same write as the image (a pull), and take the name off the image
// that had it; a bad name is refused before anything is fetched.
func TestFetchNamed(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	old := threeLayers(t, func(c *ocispec.Image) { c.Author = "old" })
	fetch(t, s, newFetcher(old), old)
	if err := s.Tag(ctx, "example.com/app:1", Image{ID: old.config}); err != nil {
		t.Fatal(err)
	}
	ti := threeLayers(t, nil)
	rd := "example.com/app@" + ti.manifest.Digest.String()
	img, err := s.Fetch(ctx, FetchOptions{Fetcher: newFetcher(ti), Manifest: ti.manifest, Name: "example.com/app:1", RepoDigest: rd})
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{"example.com/app:1", rd} {
		got, err := s.Get(ctx, ref)
		if err != nil || got.ID != ti.config {
			t.Errorf("Get(%s) = %s, %v; want %s", ref, got.ID, err, ti.config)
		}
	}
	if img.LastTagTime.IsZero() {
		t.Error("LastTagTime not set")
	}
	if prev, err := s.Get(ctx, old.config.String()); err != nil || len(prev.Names) != 0 {
		t.Errorf("the old image keeps %v (%v), want no names", prev.Names, err)
	}

	f := newFetcher(ti)
	if _, err := newStore(t).Fetch(ctx, FetchOptions{Fetcher: f, Manifest: ti.manifest, Name: "Bad Name"}); !errdefs.IsInvalidArgument(err) {
		t.Errorf("bad name: %v, want invalid argument", err)
	}
	if n := f.total.Load(); n != 0 {
		t.Errorf("%d fetches for a refused name", n)
	}
}
