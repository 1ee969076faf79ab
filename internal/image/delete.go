package image

import (
	"context"
	"fmt"
	"slices"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/reference"
	"github.com/opencontainers/go-digest"
)

// Delete removes names or images like `docker rmi`: untag by name, delete by
// ID when no name is left; inUse reports image IDs containers use (refused
// with errdefs.ErrConflict unless force). Returns Docker's Untagged/Deleted
// lines. It removes records only: blobs and layer snapshots nothing
// references any more are reclaimed by GC, which the caller runs next.
func (s *Store) Delete(ctx context.Context, ref string, force bool, inUse func(digest.Digest) bool) ([]DeleteItem, error) {
	if inUse == nil {
		inUse = func(digest.Digest) bool { return false }
	}
	var items []DeleteItem
	err := s.update(ctx, func(r *records) error {
		items = nil
		i, named, byName, err := r.resolve(ref)
		if err != nil {
			return err
		}
		img := &r.Images[i]
		short := shortID(img.ID)
		used := inUse(img.ID)
		untag := func(n string) {
			img.Names = slices.DeleteFunc(img.Names, func(x string) bool { return x == n })
			img.Digests = slices.DeleteFunc(img.Digests, func(x string) bool { return x == n })
			items = append(items, DeleteItem{Untagged: FamiliarName(n)})
		}
		refs := img.refs()

		if byName {
			// By name: drop that reference. Removing the last one of an
			// image a container uses would leave a dangling image behind
			// the user's back, so that needs force.
			if !force && used && len(refs) == 1 {
				return fmt.Errorf("%w: unable to remove repository reference %q (must force) - image %s is being used by container", errdefs.ErrConflict, ref, short)
			}
			untag(named.String())
			if !named.Canonical() && !img.hasTagIn(named.Name()) {
				// The last tag of a repository takes that repository's
				// digest references with it (Docker does the same).
				for _, d := range slices.Clone(img.Digests) {
					if n, err := reference.ParseNormalized(d); err == nil && n.Name() == named.Name() {
						untag(d)
					}
				}
			}
			if len(img.refs()) > 0 {
				return nil
			}
		} else if singleRepository(refs) {
			// By ID with every name in one repository (at most one tag):
			// the names go with the image.
			if used && !force {
				return fmt.Errorf("%w: unable to delete %s (must be forced) - image is being used by container", errdefs.ErrConflict, short)
			}
			for _, n := range refs {
				untag(n)
			}
		}

		if left := img.refs(); len(left) > 0 {
			if !force {
				return fmt.Errorf("%w: unable to delete %s (must be forced) - image is referenced in multiple repositories", errdefs.ErrConflict, short)
			}
			for _, n := range left {
				untag(n)
			}
		}
		if used && !force {
			return fmt.Errorf("%w: unable to delete %s (must be forced) - image is being used by container", errdefs.ErrConflict, short)
		}
		items = append(items, DeleteItem{Deleted: img.ID.String()})
		r.Images = slices.Delete(r.Images, i, i+1)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("delete %s: %w", ref, err)
	}
	return items, nil
}

// refs lists the image's tags, then its digest references.
func (img *Image) refs() []string {
	return append(slices.Clone(img.Names), img.Digests...)
}

func (img *Image) hasTagIn(repo string) bool {
	for _, n := range img.Names {
		if p, err := reference.ParseNormalized(n); err == nil && p.Name() == repo {
			return true
		}
	}
	return false
}

// singleRepository is Docker's isSingleReference: at most one tag, and
// every reference in one repository.
func singleRepository(refs []string) bool {
	repo, tags := "", 0
	for _, ref := range refs {
		n, err := reference.ParseNormalized(ref)
		if err != nil {
			return false
		}
		if !n.Canonical() {
			tags++
		}
		if repo != "" && n.Name() != repo {
			return false
		}
		repo = n.Name()
	}
	return tags <= 1
}
