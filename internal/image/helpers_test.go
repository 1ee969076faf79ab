package image

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/snapshot"
	"github.com/berth-dev/berth/internal/testutil"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// entry is one tar entry of a test layer.
type entry struct {
	name, body, link string
	typ              byte
}

func file(name, body string) entry { return entry{name: name, body: body, typ: tar.TypeReg} }
func dir(name string) entry        { return entry{name: name, typ: tar.TypeDir} }
func symlink(name, to string) entry {
	return entry{name: name, link: to, typ: tar.TypeSymlink}
}

// layer is a test layer: entries and how its blob is compressed.
type layer struct {
	entries []entry
	comp    archive.Compression
}

func tarOf(t *testing.T, entries []entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: 0o644, ModTime: time.Unix(1700000000, 0)}
		if e.typ == tar.TypeDir {
			h.Mode = 0o755
		}
		if e.typ == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// testImage is an image built in memory: its blobs and what they mean.
type testImage struct {
	manifest ocispec.Descriptor
	config   digest.Digest
	layers   []ocispec.Descriptor
	diffIDs  []digest.Digest
	chain    []digest.Digest
	blobs    map[digest.Digest][]byte
}

func (ti testImage) top() digest.Digest { return ti.chain[len(ti.chain)-1] }

// buildImage makes a schema 2 image of layers; createdBy labels the
// config's history, and mutate (may be nil) edits the config before it is
// hashed (to plant a wrong diff ID).
func buildImage(t *testing.T, createdBy string, layers []layer, mutate func(*ocispec.Image)) testImage {
	t.Helper()
	ti := testImage{blobs: map[digest.Digest][]byte{}}
	created := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	cfg := ocispec.Image{
		Created:  &created,
		Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"},
		Config:   ocispec.ImageConfig{Env: []string{"PATH=/bin"}, Cmd: []string{"/bin/sh"}, Labels: map[string]string{"test": createdBy}},
		RootFS:   ocispec.RootFS{Type: "layers"},
	}
	for i, l := range layers {
		raw := tarOf(t, l.entries)
		var buf bytes.Buffer
		w, err := archive.Compress(&buf, l.comp)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(raw); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		blob := buf.Bytes()
		d := digest.FromBytes(blob)
		ti.blobs[d] = blob
		mt := ocispec.MediaTypeImageLayerGzip
		if l.comp == archive.Zstd {
			mt = ocispec.MediaTypeImageLayerZstd
		} else if l.comp == archive.Uncompressed {
			mt = ocispec.MediaTypeImageLayer
		}
		ti.layers = append(ti.layers, ocispec.Descriptor{MediaType: mt, Digest: d, Size: int64(len(blob))})
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, digest.FromBytes(raw))
		cfg.History = append(cfg.History, ocispec.History{Created: &created, CreatedBy: fmt.Sprintf("%s layer %d", createdBy, i)})
		if i == 0 {
			cfg.History = append(cfg.History, ocispec.History{Created: &created, CreatedBy: createdBy + " env", EmptyLayer: true})
		}
	}
	if mutate != nil {
		mutate(&cfg)
	}
	ti.diffIDs = cfg.RootFS.DiffIDs
	ti.chain = ChainIDs(ti.diffIDs)
	cb, _ := json.Marshal(cfg)
	ti.config = digest.FromBytes(cb)
	ti.blobs[ti.config] = cb
	m := ocispec.Manifest{
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: ti.config, Size: int64(len(cb))},
		Layers:    ti.layers,
	}
	m.SchemaVersion = 2
	mb, _ := json.Marshal(m)
	md := digest.FromBytes(mb)
	ti.blobs[md] = mb
	ti.manifest = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: md, Size: int64(len(mb))}
	return ti
}

// memFetcher serves blobs from memory, counting fetches; corrupt blobs
// are served with a flipped byte, and delay slows every read.
type memFetcher struct {
	blobs   map[digest.Digest][]byte
	corrupt map[digest.Digest]bool
	delay   time.Duration
	mu      sync.Mutex
	count   map[digest.Digest]int
	total   atomic.Int64
}

func newFetcher(images ...testImage) *memFetcher {
	f := &memFetcher{blobs: map[digest.Digest][]byte{}, corrupt: map[digest.Digest]bool{}, count: map[digest.Digest]int{}}
	for _, ti := range images {
		for d, b := range ti.blobs {
			f.blobs[d] = b
		}
	}
	return f
}

func (f *memFetcher) Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	b, ok := f.blobs[desc.Digest]
	if !ok {
		return nil, fmt.Errorf("blob %s: %w", desc.Digest, errdefs.ErrNotFound)
	}
	f.mu.Lock()
	f.count[desc.Digest]++
	f.mu.Unlock()
	f.total.Add(1)
	if f.corrupt[desc.Digest] {
		b = bytes.Clone(b)
		b[len(b)/2] ^= 0xff
	}
	var r io.Reader = bytes.NewReader(b)
	if f.delay > 0 {
		r = &slowReader{r: r, delay: f.delay}
	}
	return io.NopCloser(r), nil
}

func (f *memFetcher) fetched(d digest.Digest) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.count[d]
}

type slowReader struct {
	r     io.Reader
	delay time.Duration
}

func (s *slowReader) Read(p []byte) (int, error) {
	time.Sleep(s.delay)
	if len(p) > 4096 {
		p = p[:4096]
	}
	return s.r.Read(p)
}

// driver is a snapshotter the fetch pipeline must work on: overlay unpacks
// layers in parallel, native one on top of the other.
type driver struct {
	name string
	open func(root string) (snapshot.Snapshotter, error)
}

var drivers = []driver{
	{"overlay", snapshot.NewOverlay},
	{"native", snapshot.NewNative},
}

// forEachDriver runs fn once per snapshotter as a subtest.
func forEachDriver(t *testing.T, fn func(t *testing.T, d driver)) {
	testutil.RequiresRoot(t)
	for _, d := range drivers {
		t.Run(d.name, func(t *testing.T) {
			if _, err := d.open(filepath.Join(t.TempDir(), "probe")); errors.Is(err, errdefs.ErrNotSupported) {
				t.Skipf("%s snapshotter: %v", d.name, err)
			}
			fn(t, d)
		})
	}
}

// openStore opens content, snapshots and images under root, as one berth
// process would.
func openStore(t *testing.T, root string, d driver) *Store {
	t.Helper()
	cs, err := content.Open(filepath.Join(root, "content"))
	if err != nil {
		t.Fatal(err)
	}
	sn, err := d.open(filepath.Join(root, "snapshots"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewStore(filepath.Join(root, "images"), cs, sn)
	if err != nil {
		t.Fatal(err)
	}
	// Background flushes write under root: done before TempDir's removal.
	t.Cleanup(s.Flush)
	return s
}

// newStore opens a store on the default snapshotter.
func newStore(t *testing.T) *Store {
	t.Helper()
	testutil.RequiresRoot(t)
	return openStore(t, t.TempDir(), driver{"default", newSnapshotter})
}

// recordStore is a store for tests of names and records only: they never
// reach the content store or the snapshotter, and need no root.
func recordStore(t *testing.T) *Store {
	t.Helper()
	return &Store{root: t.TempDir()}
}

func fetch(t *testing.T, s *Store, f Fetcher, ti testImage) Image {
	t.Helper()
	img, err := s.Fetch(context.Background(), FetchOptions{Fetcher: f, Manifest: ti.manifest})
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	return img
}

// snapshots returns every snapshot key with its kind.
func snapshots(t *testing.T, s *Store) map[string]snapshot.Kind {
	t.Helper()
	out := map[string]snapshot.Kind{}
	if err := s.sn.Walk(context.Background(), func(i snapshot.Info) error { out[i.Key] = i.Kind; return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func blobs(t *testing.T, s *Store) map[digest.Digest]bool {
	t.Helper()
	out := map[digest.Digest]bool{}
	if err := s.cs.Walk(context.Background(), func(i content.Info) error { out[i.Digest] = true; return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// newSnapshotter opens the snapshotter the tests run on.
var newSnapshotter = snapshot.New
