package image

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Media types of Docker's schema 2 (OCI's are in ocispec).
const (
	MediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeDockerConfig       = "application/vnd.docker.container.image.v1+json"
)

// maxMetadataSize bounds a manifest or config read into memory: real ones
// are kilobytes; a hostile source must not make us allocate gigabytes.
const maxMetadataSize = 8 << 20

// fetchSmallLater returns a manifest or config blob, from the content
// store when present, else from f, and leaves the storing to the caller:
// the bytes are verified against desc, and store (a no-op for a blob the store has) writes
// them to the content store, fsync included, while the caller goes on.
// Fetch stores the manifest and config while the layers download, and
// waits for both before it writes the image record that names them. have,
// when not nil, are the blob's bytes as the caller already read them:
// verified the same way, and neither the store nor f is asked.
func (s *Store) fetchSmallLater(ctx context.Context, f Fetcher, desc ocispec.Descriptor, have []byte) ([]byte, func(context.Context) error, error) {
	noop := func(context.Context) error { return nil }
	if err := desc.Digest.Validate(); err != nil {
		return nil, nil, fmt.Errorf("%w: blob digest %q: %v", errdefs.ErrInvalidArgument, desc.Digest, err)
	}
	if desc.Size > maxMetadataSize {
		return nil, nil, fmt.Errorf("%w: blob %s is %d bytes, more than %d", errdefs.ErrInvalidArgument, desc.Digest, desc.Size, maxMetadataSize)
	}
	b := have
	if b == nil {
		var err error
		b, err = s.cs.ReadAll(ctx, desc.Digest, maxMetadataSize)
		if err == nil {
			return b, noop, nil
		}
		if !errdefs.IsNotFound(err) {
			return nil, nil, err
		}
		if b, err = readSmall(ctx, f, desc); err != nil {
			return nil, nil, err
		}
	}
	if len(b) > maxMetadataSize {
		return nil, nil, fmt.Errorf("%w: blob %s is larger than %d bytes", errdefs.ErrInvalidArgument, desc.Digest, maxMetadataSize)
	}
	if got := desc.Digest.Algorithm().FromBytes(b); got != desc.Digest {
		return nil, nil, fmt.Errorf("%w: blob %s: digest mismatch: got %s", errdefs.ErrInvalidArgument, desc.Digest, got)
	}
	if desc.Size > 0 && int64(len(b)) != desc.Size {
		return nil, nil, fmt.Errorf("%w: blob %s: size %d, expected %d", errdefs.ErrInvalidArgument, desc.Digest, len(b), desc.Size)
	}
	desc.Size = int64(len(b))
	store := func(ctx context.Context) error {
		if err := s.cs.WriteBlob(ctx, desc, bytes.NewReader(b)); err != nil && !errdefs.IsAlreadyExists(err) {
			return fmt.Errorf("store %s: %w", desc.Digest, err)
		}
		return nil
	}
	return b, store, nil
}

// readSmall reads a manifest or config from f, at most one byte more than
// maxMetadataSize (the caller tells a too big blob by its length).
func readSmall(ctx context.Context, f Fetcher, desc ocispec.Descriptor) ([]byte, error) {
	rc, err := f.Fetch(ctx, desc)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", desc.Digest, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxMetadataSize+1))
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", desc.Digest, err)
	}
	return b, nil
}

// parseManifest reads a Docker schema 2 or OCI image manifest (both have
// the same shape); an index or a manifest list is the caller's to resolve
// to one platform first.
func parseManifest(b []byte) (ocispec.Manifest, error) {
	var m struct {
		ocispec.Manifest
		Manifests json.RawMessage `json:"manifests"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return ocispec.Manifest{}, fmt.Errorf("%w: parse manifest: %v", errdefs.ErrInvalidArgument, err)
	}
	switch m.MediaType {
	case "", ocispec.MediaTypeImageManifest, MediaTypeDockerManifest:
	default:
		return ocispec.Manifest{}, fmt.Errorf("%w: manifest media type %q is not an image manifest", errdefs.ErrInvalidArgument, m.MediaType)
	}
	if m.Manifests != nil || m.SchemaVersion != 2 {
		return ocispec.Manifest{}, fmt.Errorf("%w: not a schema 2 image manifest (an index must be resolved to a platform first)", errdefs.ErrInvalidArgument)
	}
	if err := m.Config.Digest.Validate(); err != nil {
		return ocispec.Manifest{}, fmt.Errorf("%w: manifest config digest: %v", errdefs.ErrInvalidArgument, err)
	}
	for _, l := range m.Layers {
		if err := l.Digest.Validate(); err != nil {
			return ocispec.Manifest{}, fmt.Errorf("%w: manifest layer digest: %v", errdefs.ErrInvalidArgument, err)
		}
	}
	return m.Manifest, nil
}

// ChainIDs returns the snapshot name of each layer: the first layer's is
// its diff ID, each next one hashes "<parent chain ID> <diff ID>"
// (the OCI image spec's ChainID), so a layer's name covers everything
// below it.
func ChainIDs(diffIDs []digest.Digest) []digest.Digest {
	out := make([]digest.Digest, len(diffIDs))
	for i, d := range diffIDs {
		if i == 0 {
			out[i] = d
			continue
		}
		out[i] = digest.FromString(out[i-1].String() + " " + d.String())
	}
	return out
}

// Manifest and Config read an image's manifest and config from the content store.
func (s *Store) Manifest(ctx context.Context, img Image) (ocispec.Manifest, error) {
	b, err := s.cs.ReadAll(ctx, img.Target.Digest, maxMetadataSize)
	if err != nil {
		return ocispec.Manifest{}, fmt.Errorf("manifest of %s: %w", img.ID, err)
	}
	m, err := parseManifest(b)
	if err != nil {
		return ocispec.Manifest{}, fmt.Errorf("manifest of %s: %w", img.ID, err)
	}
	return m, nil
}

func (s *Store) Config(ctx context.Context, img Image) (ocispec.Image, error) {
	var c ocispec.Image
	if err := s.readConfig(ctx, img, &c); err != nil {
		return ocispec.Image{}, err
	}
	return c, nil
}

// readConfig decodes the config blob into v (an ocispec.Image or Docker's
// superset of it).
func (s *Store) readConfig(ctx context.Context, img Image, v any) error {
	b, err := s.cs.ReadAll(ctx, img.ID, maxMetadataSize)
	if err != nil {
		return fmt.Errorf("config of %s: %w", img.ID, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: config of %s: %v", errdefs.ErrInvalidArgument, img.ID, err)
	}
	return nil
}
