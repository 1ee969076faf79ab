// Package image is berth's image store: names → manifests in the content
// store, image configs, and the pipeline that turns layer blobs into
// snapshots (fetch → verify → decompress → unpack), shared by pull, load and
// import.
//
// CONTRACT (implementation pending: helper "image").
package image

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/snapshot"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

var errPending = errors.New("image: not implemented yet")

// Image is one stored image. ID is the config digest (Docker's image ID).
type Image struct {
	ID       digest.Digest
	Names    []string           // normalized references, "docker.io/library/busybox:latest"
	Target   ocispec.Descriptor // the platform manifest
	Digests  []string           // repo@sha256:… the image was pulled or pushed by (RepoDigests)
	Created  time.Time          // when the store got it
	ChainID  digest.Digest      // top layer's snapshot name ("" for an image with no layers)
	Platform ocispec.Platform
}

// Store keeps image records under <root>/images (atomic files + a
// cross-process lock) on top of a content store and a snapshotter.
type Store struct{}

// NewStore opens the image store.
func NewStore(root string, cs *content.Store, sn snapshot.Snapshotter) (*Store, error) {
	return nil, errPending
}

// Fetcher returns a blob's bytes (a registry, an archive being loaded).
type Fetcher interface {
	Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error)
}

// Progress is one event of a pull, load or import, per blob (ID = the
// short digest Docker prints: first 12 hex chars). Action is one of
// "Waiting", "Downloading", "Verifying Checksum", "Download complete",
// "Extracting", "Pull complete", "Already exists".
type Progress struct {
	ID      string
	Action  string
	Current int64
	Total   int64
}

// FetchOptions drive Store.Fetch.
type FetchOptions struct {
	Fetcher  Fetcher
	Manifest ocispec.Descriptor // the platform manifest (Docker schema 2 or OCI)
	Progress func(Progress)     // may be nil; called from several goroutines, serialized by the caller
	// Parallel bounds concurrent layer downloads (0 = 3, Docker's default).
	Parallel int
}

// Fetch stores a manifest, its config and its layers in the content store
// and unpacks the layers into snapshots, streaming each layer from the
// fetcher through the digest check into its snapshot (one read). Layers
// whose snapshot already exists are not fetched. It returns the image
// (not yet named: see Tag). Nothing becomes visible unless verified.
func (s *Store) Fetch(ctx context.Context, opts FetchOptions) (Image, error) { return Image{}, errPending }

// Tag points name (normalized) at the image identified by target.
func (s *Store) Tag(ctx context.Context, name string, img Image) error { return errPending }

// Get finds an image by name, full or short ID (sha256: optional), or digest reference.
func (s *Store) Get(ctx context.Context, ref string) (Image, error) { return Image{}, errPending }

// List returns all images.
func (s *Store) List(ctx context.Context) ([]Image, error) { return nil, errPending }

// Manifest and Config read an image's manifest and config from the content store.
func (s *Store) Manifest(ctx context.Context, img Image) (ocispec.Manifest, error) {
	return ocispec.Manifest{}, errPending
}
func (s *Store) Config(ctx context.Context, img Image) (ocispec.Image, error) {
	return ocispec.Image{}, errPending
}

// Delete removes names or images like `docker rmi`: untag by name, delete by
// ID when no name is left; inUse reports image IDs containers use (refused
// with errdefs.ErrConflict unless force). Returns Docker's Untagged/Deleted lines.
func (s *Store) Delete(ctx context.Context, ref string, force bool, inUse func(digest.Digest) bool) ([]DeleteItem, error) {
	return nil, errPending
}

// DeleteItem is one line of rmi output.
type DeleteItem struct{ Untagged, Deleted string }

// GC removes blobs and snapshots no image references (and, for snapshots,
// that keep(key) does not protect: container snapshots) and crash leftovers.
func (s *Store) GC(ctx context.Context, keep func(snapshotKey string) bool) (reclaimed int64, err error) {
	return 0, errPending
}
