package image

import (
	"context"
	"fmt"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/reference"
)

// digestRef normalizes a repo@digest reference.
func digestRef(repoDigest string) (string, error) {
	n, err := reference.ParseNormalized(repoDigest)
	if err != nil {
		return "", fmt.Errorf("digest %s: %w: %v", repoDigest, errdefs.ErrInvalidArgument, err)
	}
	if !n.Canonical() {
		return "", fmt.Errorf("digest %s: %w: not a digest reference", repoDigest, errdefs.ErrInvalidArgument)
	}
	return n.String(), nil
}

// AddDigest records that img is known to its registry as repoDigest
// ("127.0.0.1:5000/busybox@sha256:…", Docker's RepoDigests), recording the
// image first when the store does not know it yet (a pull by digest names
// no tag).
func (s *Store) AddDigest(ctx context.Context, img Image, repoDigest string) error {
	d, err := digestRef(repoDigest)
	if err != nil {
		return err
	}
	return s.update(ctx, func(r *records) error {
		i := r.index(img.ID)
		if i < 0 {
			if img.Target.Digest == "" {
				return fmt.Errorf("digest %s: %w", repoDigest, notFoundError{img.ID.String()})
			}
			if img.Created.IsZero() {
				img.Created = time.Now().UTC()
			}
			img.Names, img.Digests = nil, nil
			r.upsert(img)
			i = r.index(img.ID)
		}
		r.setDigest(d, i)
		return nil
	})
}
