package image

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/reference"
	"github.com/opencontainers/go-digest"
)

// notFoundError prints Docker's message and classifies as ErrNotFound.
type notFoundError struct{ ref string }

func (e notFoundError) Error() string { return "No such image: " + e.ref }
func (e notFoundError) Unwrap() error { return errdefs.ErrNotFound }

// isFullID matches `^(sha256:)?[0-9a-f]{64}$` and isIDPart
// `^(sha256:)?[0-9a-f]+$`, without compiling regexps at every process's
// start (the CLI's start-up is part of every `berth run`).
func isFullID(s string) bool {
	return reference.IsIdentifier(strings.TrimPrefix(s, "sha256:"))
}

func isIDPart(s string) bool {
	s = strings.TrimPrefix(s, "sha256:")
	return s != "" && isLowerHex(s)
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// NormalizeName returns the normalized, tagged form of a name
// ("busybox" → "docker.io/library/busybox:latest"). A digest reference
// (name@sha256:…) is returned as is.
func NormalizeName(name string) (string, error) {
	n, err := parseName(name)
	if err != nil {
		return "", err
	}
	return n.String(), nil
}

// FamiliarName is the short form Docker prints ("busybox:latest").
func FamiliarName(name string) string {
	n, err := reference.ParseNormalized(name)
	if err != nil {
		return name
	}
	return n.FamiliarString()
}

// parseName normalizes name, with the default tag when it names neither
// tag nor digest.
func parseName(name string) (reference.Reference, error) {
	n, err := reference.ParseNormalized(name)
	if err != nil {
		return reference.Reference{}, fmt.Errorf("%w: invalid reference format %q: %v", errdefs.ErrInvalidArgument, name, err)
	}
	return n.TagNameOnly(), nil
}

// tagName normalizes a name to put on an image; a digest reference is
// refused as Docker refuses it.
func tagName(name string) (string, error) {
	n, err := parseName(name)
	if err != nil {
		return "", fmt.Errorf("tag %s: %w", name, err)
	}
	if n.Canonical() {
		return "", fmt.Errorf("tag %s: %w: refusing to create a tag with a digest reference", name, errdefs.ErrInvalidArgument)
	}
	return n.String(), nil
}

// Tag points name (normalized) at the image identified by img.ID. An image
// the store does not know yet (one a loader wrote into the content store)
// is recorded from img; an image that loses its last name stays, dangling.
// img.Digests are added to the image's repo digests. A digest reference is
// refused as Docker refuses it; AddDigest records one.
func (s *Store) Tag(ctx context.Context, name string, img Image) error {
	n, err := tagName(name)
	if err != nil {
		return err
	}
	if err := img.ID.Validate(); err != nil {
		return fmt.Errorf("tag %s: %w: image ID %q: %v", name, errdefs.ErrInvalidArgument, img.ID, err)
	}
	return s.update(ctx, func(r *records) error {
		i := r.index(img.ID)
		if i < 0 {
			if img.Target.Digest == "" {
				return fmt.Errorf("tag %s: %w", name, notFoundError{img.ID.String()})
			}
			if img.Created.IsZero() {
				img.Created = time.Now().UTC()
			}
			img.Names = nil
			r.upsert(img)
			i = r.index(img.ID)
		} else {
			for _, d := range img.Digests {
				r.setDigest(d, i)
			}
		}
		r.setName(n, i)
		r.Images[i].LastTagTime = time.Now().UTC()
		return nil
	})
}

// Get finds an image by name, full or short ID (sha256: optional), or digest reference.
func (s *Store) Get(ctx context.Context, ref string) (Image, error) {
	r, err := s.load()
	if err != nil {
		return Image{}, err
	}
	i, _, _, err := r.resolve(ref)
	if err != nil {
		return Image{}, err
	}
	return r.Images[i], nil
}

// List returns all images, newest first (as `docker images` lists them).
func (s *Store) List(ctx context.Context) ([]Image, error) {
	r, err := s.load()
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(r.Images, func(a, b Image) int { return b.Created.Compare(a.Created) })
	return r.Images, nil
}

// resolve returns the index of the image ref names and, when ref was a
// name or digest reference (not an ID), that reference normalized (ok
// false for an ID). The
// order is Docker's: a full ID; a name (so a repository called "abcd" wins
// over an ID starting with abcd); a unique ID prefix.
func (r *records) resolve(ref string) (int, reference.Reference, bool, error) {
	if isFullID(ref) {
		id := digest.Digest("sha256:" + strings.TrimPrefix(ref, "sha256:"))
		if i := r.index(id); i >= 0 {
			return i, reference.Reference{}, false, nil
		}
		return -1, reference.Reference{}, false, notFoundError{ref}
	}
	if n, err := parseName(ref); err == nil {
		if n.Canonical() {
			for i, img := range r.Images {
				if slices.Contains(img.Digests, n.String()) {
					return i, n, true, nil
				}
			}
			// A manifest pulled under another repository, or before its
			// repo digest was recorded: match the manifest itself, as long as
			// the image carries some reference to this repository.
			for i, img := range r.Images {
				if img.Target.Digest == n.Digest && img.hasRepo(n.Name()) {
					return i, n, true, nil
				}
			}
		} else {
			for i, img := range r.Images {
				if slices.Contains(img.Names, n.String()) {
					return i, n, true, nil
				}
			}
		}
	}
	if isIDPart(ref) {
		prefix := "sha256:" + strings.TrimPrefix(ref, "sha256:")
		found := -1
		for i, img := range r.Images {
			if strings.HasPrefix(img.ID.String(), prefix) {
				if found >= 0 {
					return -1, reference.Reference{}, false, fmt.Errorf("%w: short ID %q is ambiguous", errdefs.ErrInvalidArgument, ref)
				}
				found = i
			}
		}
		if found >= 0 {
			return found, reference.Reference{}, false, nil
		}
	}
	return -1, reference.Reference{}, false, notFoundError{ref}
}

func (img *Image) hasRepo(repo string) bool {
	for _, ref := range append(slices.Clone(img.Names), img.Digests...) {
		if n, err := reference.ParseNormalized(ref); err == nil && n.Name() == repo {
			return true
		}
	}
	return false
}
