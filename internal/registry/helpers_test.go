package registry

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// blobStore is an in-memory PushSource that counts opens per blob.
type blobStore struct {
	mu     sync.Mutex
	blobs  map[digest.Digest][]byte
	opened map[digest.Digest]int
}

func newBlobStore() *blobStore {
	return &blobStore{blobs: map[digest.Digest][]byte{}, opened: map[digest.Digest]int{}}
}

func (s *blobStore) add(mt string, b []byte) ocispec.Descriptor {
	d := digest.FromBytes(b)
	s.mu.Lock()
	s.blobs[d] = b
	s.mu.Unlock()
	return ocispec.Descriptor{MediaType: mt, Digest: d, Size: int64(len(b))}
}

func (s *blobStore) Open(_ context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.blobs[desc.Digest]
	if !ok {
		return nil, fmt.Errorf("blob %s: %w", desc.Digest, errdefs.ErrNotFound)
	}
	s.opened[desc.Digest]++
	return io.NopCloser(bytes.NewReader(b)), nil
}

// testImage is an image built in memory with random layers.
type testImage struct {
	PushImage
	layerData [][]byte
}

// randomLayer is a gzipped tar holding one file of size random bytes.
func randomLayer(t *testing.T, size int) []byte {
	t.Helper()
	data := make([]byte, size)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	if err := tw.WriteHeader(&tar.Header{Name: "data.bin", Mode: 0o644, Size: int64(size), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	tw.Write(data)
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

// buildImage makes an image for arch with the given layers (nil = two
// fresh random layers) and adds its blobs to store.
func buildImage(t *testing.T, store *blobStore, arch string, layers [][]byte) testImage {
	t.Helper()
	if layers == nil {
		layers = [][]byte{randomLayer(t, 300<<10), randomLayer(t, 1<<10)}
	}
	img := testImage{layerData: layers}
	cfg := ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: arch}, RootFS: ocispec.RootFS{Type: "layers"}}
	for _, l := range layers {
		img.Layers = append(img.Layers, store.add(ocispec.MediaTypeImageLayerGzip, l))
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, digest.FromBytes(l)) // not a real diff ID; the registry does not care
	}
	cfgBytes, _ := json.Marshal(cfg)
	img.Config = store.add(ocispec.MediaTypeImageConfig, cfgBytes)
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: img.Config, Layers: img.Layers}
	m.SchemaVersion = 2
	img.ManifestBytes, _ = json.Marshal(m)
	img.Manifest = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(img.ManifestBytes), Size: int64(len(img.ManifestBytes))}
	return img
}

// progressLog records push progress events.
type progressLog struct {
	mu     sync.Mutex
	events []PushProgress
}

func (p *progressLog) record(e PushProgress) {
	p.mu.Lock()
	p.events = append(p.events, e)
	p.mu.Unlock()
}

// final returns the last non-"Pushing" action per layer ID.
func (p *progressLog) final() map[string]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]string{}
	for _, e := range p.events {
		out[e.ID] = e.Action
	}
	return out
}

func readAll(t *testing.T, f *Fetcher, desc ocispec.Descriptor) []byte {
	t.Helper()
	rc, err := f.Fetch(context.Background(), desc)
	if err != nil {
		t.Fatalf("fetch %s: %v", desc.Digest, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", desc.Digest, err)
	}
	return b
}
