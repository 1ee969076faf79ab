package imagearchive

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"time"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func importImage(ctx context.Context, r io.Reader, cs *content.Store, opts ImportOptions) (Entry, error) {
	now := time.Now().UTC()
	cfg := ocispec.Image{Created: &now, Platform: opts.Platform}
	if cfg.OS == "" {
		cfg.OS = "linux"
	}
	if cfg.Architecture == "" {
		cfg.Architecture = runtime.GOARCH
	}
	if err := ApplyChanges(&cfg.Config, opts.Changes); err != nil {
		return Entry{}, fmt.Errorf("import: %w", err)
	}
	layer, diffID, err := importLayer(ctx, r, cs)
	if err != nil {
		return Entry{}, fmt.Errorf("import: %w", err)
	}
	comment := opts.Message
	if comment == "" {
		comment = "Imported from -" // what docker records for a tarball on stdin
	}
	cfg.RootFS = ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{diffID}}
	cfg.History = []ocispec.History{{Created: &now, Comment: comment}}

	cfgDesc, err := storeJSON(ctx, cs, ocispec.MediaTypeImageConfig, cfg)
	if err != nil {
		return Entry{}, fmt.Errorf("import: config: %w", err)
	}
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: cfgDesc, Layers: []ocispec.Descriptor{layer}}
	m.SchemaVersion = 2
	mdesc, err := storeJSON(ctx, cs, ocispec.MediaTypeImageManifest, m)
	if err != nil {
		return Entry{}, fmt.Errorf("import: manifest: %w", err)
	}
	mdesc.Platform = &cfg.Platform
	return Entry{Manifest: mdesc}, nil
}

// importLayer stores the rootfs tar gzip-compressed, computing its diff_id
// (uncompressed digest) as it compresses; the store digests the blob. The stream
// is read through a tar reader so that something that is not a tar is an
// error rather than an image that fails at its first run; the bytes stored
// are the input's, unchanged.
func importLayer(ctx context.Context, r io.Reader, cs *content.Store) (ocispec.Descriptor, digest.Digest, error) {
	rc, _, err := archive.Decompress(r)
	if err != nil {
		return ocispec.Descriptor{}, "", fmt.Errorf("%w: %v", errdefs.ErrInvalidArgument, err)
	}
	defer rc.Close()
	w, err := cs.Writer(ctx, ingestRef(), ocispec.Descriptor{})
	if err != nil {
		return ocispec.Descriptor{}, "", err
	}
	defer w.Close()
	zw, err := archive.Compress(w, archive.Gzip)
	if err != nil {
		return ocispec.Descriptor{}, "", err
	}
	diffDigester := digest.Canonical.Digester()
	tee := io.TeeReader(ctxReader{ctx, rc}, io.MultiWriter(zw, diffDigester.Hash()))
	tr := tar.NewReader(tee)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return ocispec.Descriptor{}, "", fmt.Errorf("rootfs tarball: %w: %v", errdefs.ErrInvalidArgument, err)
		}
		if _, err := io.Copy(io.Discard, tr); err != nil {
			return ocispec.Descriptor{}, "", fmt.Errorf("rootfs tarball: member %q: %w: %v", hdr.Name, errdefs.ErrInvalidArgument, err)
		}
	}
	// The tar reader stops after the end-of-archive blocks; the padding
	// after them is part of the layer's bytes, hence of its diff_id.
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return ocispec.Descriptor{}, "", fmt.Errorf("rootfs tarball: %w: %v", errdefs.ErrInvalidArgument, err)
	}
	if err := zw.Close(); err != nil {
		return ocispec.Descriptor{}, "", err
	}
	desc, err := w.Commit(ctx)
	if err != nil {
		return ocispec.Descriptor{}, "", err
	}
	desc.MediaType = ocispec.MediaTypeImageLayerGzip
	return desc, diffDigester.Digest(), nil
}

// storeJSON marshals v and stores it as a blob of mediaType.
func storeJSON(ctx context.Context, cs *content.Store, mediaType string, v any) (ocispec.Descriptor, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	desc := ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(b), Size: int64(len(b))}
	if err := cs.WriteBlob(ctx, desc, bytes.NewReader(b)); err != nil {
		return ocispec.Descriptor{}, err
	}
	return desc, nil
}
