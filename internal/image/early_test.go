package image

import (
	"context"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// configLastFetcher answers the config's GET only once a layer's GET has
// come in: a pull that waited for the config before its first layer would
// time out.
type configLastFetcher struct {
	*memFetcher
	config    ocispec.Descriptor
	layers    []ocispec.Descriptor
	layerSeen chan struct{}
	once      sync.Once
}

func (f *configLastFetcher) Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	if desc.Digest == f.config.Digest {
		select {
		case <-f.layerSeen:
		case <-time.After(10 * time.Second):
			return nil, fmt.Errorf("config fetched, and no layer GET sent while it was: %w", errdefs.ErrUnavailable)
		}
	}
	for _, l := range f.layers {
		if desc.Digest == l.Digest {
			f.once.Do(func() { close(f.layerSeen) })
		}
	}
	return f.memFetcher.Fetch(ctx, desc)
}

func TestFetchLayersBeforeConfig(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d driver) {
		s := openStore(t, t.TempDir(), d)
		ti := threeLayers(t, nil)
		f := &configLastFetcher{memFetcher: newFetcher(ti), config: ocispec.Descriptor{Digest: ti.config}, layers: ti.layers, layerSeen: make(chan struct{})}
		img, err := s.Fetch(context.Background(), FetchOptions{Fetcher: f, Manifest: ti.manifest})
		if err != nil {
			t.Fatal(err)
		}
		if img.ChainID != ti.top() {
			t.Fatalf("chain ID %s, want %s", img.ChainID, ti.top())
		}
		for _, l := range ti.layers {
			if n := f.fetched(l.Digest); n != 1 {
				t.Errorf("layer %s downloaded %d times, want once", shortID(l.Digest), n)
			}
		}
	})
}

// A pull that fails on its config after the early GETs went out releases
// their ingests: the next pull of the image takes them and completes.
func TestFetchBadConfigReleasesEarlyDownloads(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d driver) {
		root := t.TempDir()
		s := openStore(t, root, d)
		ti := threeLayers(t, nil)
		bad := newFetcher(ti)
		bad.corrupt[ti.config] = true
		if _, err := s.Fetch(context.Background(), FetchOptions{Fetcher: bad, Manifest: ti.manifest}); !errdefs.IsInvalidArgument(err) {
			t.Fatalf("fetch with a corrupt config: %v, want an invalid-argument error", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		img, err := openStore(t, root, d).Fetch(ctx, FetchOptions{Fetcher: newFetcher(ti), Manifest: ti.manifest})
		if err != nil {
			t.Fatalf("fetch after the failed one: %v", err)
		}
		if img.ChainID != ti.top() {
			t.Fatalf("chain ID %s, want %s", img.ChainID, ti.top())
		}
	})
}
