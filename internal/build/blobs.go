package build

import (
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/berth-dev/berth/internal/content"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func (r *buildRun) putBlob(ctx context.Context, mediaType string, b []byte) (ocispec.Descriptor, error) {
	d := ocispec.Descriptor{MediaType: mediaType, Digest: digestOf(b), Size: int64(len(b))}
	if err := r.b.Images.Content().WriteBlob(ctx, d, bytes.NewReader(b)); err != nil {
		return d, fmt.Errorf("write %s: %w", mediaType, err)
	}
	return d, nil
}

// contentFetcher feeds image.Store.Fetch from the content store, where the
// build wrote every blob.
type contentFetcher struct{ cs *content.Store }

func (f contentFetcher) Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	r, err := f.cs.Open(ctx, desc.Digest)
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", desc.Digest, err)
	}
	return r, nil
}

func newLex(d *dockerfile) *shell.Lex { return shell.NewLex(d.escape) }
