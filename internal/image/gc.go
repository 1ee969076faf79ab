package image

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/internal/atomicfile"
	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/snapshot"
	"github.com/opencontainers/go-digest"
)

// GC removes blobs and snapshots no image references (and, for snapshots,
// that keep(key) does not protect: container snapshots, and with them their
// parent layers) and crash leftovers (ingests, half-made snapshot
// directories, active snapshots of an unpack that died).
//
// It takes gc.lock exclusively, so it waits for every Fetch and Lease in
// flight: what they wrote is not referenced by an image yet, and sweeping
// it would break a concurrent pull. It holds the records lock throughout, so
// no image appears or vanishes between mark and sweep.
func (s *Store) GC(ctx context.Context, keep func(snapshotKey string) bool) (reclaimed int64, err error) {
	return s.GCKeeping(ctx, keep, nil)
}

// GCKeeping is GC with blobs that keepBlob protects kept too (the build
// cache holds layers no image references yet; `rmi` must not take them,
// only `builder prune` does).
func (s *Store) GCKeeping(ctx context.Context, keep func(snapshotKey string) bool, keepBlob func(digest.Digest) bool) (reclaimed int64, err error) {
	r, unlock, err := s.lockSweep(ctx)
	if err != nil {
		return 0, fmt.Errorf("gc: %w", err)
	}
	defer unlock()

	// Mark.
	blobs := map[digest.Digest]bool{}
	snaps := map[string]bool{}
	for _, img := range r.Images {
		bs, ss := s.uses(ctx, img)
		for _, d := range bs {
			blobs[d] = true
		}
		for _, c := range ss {
			snaps[c.String()] = true
		}
	}
	infos := map[string]snapshot.Info{}
	if err := s.sn.Walk(ctx, func(i snapshot.Info) error { infos[i.Key] = i; return nil }); err != nil {
		return 0, fmt.Errorf("gc: walk snapshots: %w", err)
	}
	// A marked snapshot holds its whole parent chain.
	var hold func(key string)
	hold = func(key string) {
		for key != "" {
			snaps[key] = true
			key = infos[key].Parent
		}
	}
	for key := range infos {
		if snaps[key] || (keep != nil && keep(key)) {
			hold(key)
		}
	}

	reclaimed, errs := s.removeSnapshots(ctx, r, infos, func(key string) bool { return !snaps[key] }, true)

	// Sweep blobs.
	var dead []content.Info
	if err := s.cs.Walk(ctx, func(i content.Info) error {
		if !blobs[i.Digest] && (keepBlob == nil || !keepBlob(i.Digest)) {
			dead = append(dead, i)
		}
		return nil
	}); err != nil {
		return reclaimed, fmt.Errorf("gc: walk content: %w", err)
	}
	for _, i := range dead {
		if err := s.cs.Delete(ctx, i.Digest); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove blob %s: %w", i.Digest, err))
			continue
		}
		reclaimed += i.Size
	}

	if err := s.cs.CleanIngests(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := s.sn.Cleanup(ctx); err != nil {
		errs = append(errs, err)
	}
	// A writer of images.json holds the records lock, which GC holds now:
	// any temp file is a dead writer's. (.images-*.json is the temporary
	// name of berth versions before atomicfile.)
	for _, pattern := range []string{atomicfile.TempGlob(s.recordsPath()), filepath.Join(s.root, ".images-*.json")} {
		tmps, _ := filepath.Glob(pattern)
		for _, p := range tmps {
			_ = os.Remove(p)
		}
	}
	if err := s.save(r); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return reclaimed, fmt.Errorf("gc: %w", err)
	}
	return reclaimed, nil
}

// lockSweep takes what a sweep of the store needs, both exclusively:
// gc.lock (every Fetch and Lease in flight finished, none starts) and then
// the records lock (no image appears or vanishes), in the order every
// holder of both takes them. It returns the records, loaded under them, and
// the function that releases both.
func (s *Store) lockSweep(ctx context.Context) (*records, func(), error) {
	gl, err := lockFile(ctx, filepath.Join(s.root, "gc.lock"), true)
	if err != nil {
		return nil, nil, err
	}
	il, err := lockFile(ctx, filepath.Join(s.root, "images.lock"), true)
	if err != nil {
		gl.unlock()
		return nil, nil, err
	}
	unlock := func() { il.unlock(); gl.unlock() }
	r, err := s.load()
	if err != nil {
		unlock()
		return nil, nil, err
	}
	return r, unlock, nil
}

// removeSnapshots removes the snapshots of infos that doomed selects,
// children before parents (Remove refuses a parent, so a doomed snapshot
// with a child that is not doomed stays), and drops each removed one from
// infos and from r's layer sizes. A snapshot whose Remove fails is not
// tried again. With measure it adds up the bytes the removed snapshots
// used (Usage may walk a directory tree, so only a caller that reports
// them asks). It returns those bytes and the failures.
func (s *Store) removeSnapshots(ctx context.Context, r *records, infos map[string]snapshot.Info, doomed func(key string) bool, measure bool) (reclaimed int64, errs []error) {
	children := map[string]int{}
	for _, i := range infos {
		if i.Parent != "" {
			children[i.Parent]++
		}
	}
	failed := map[string]bool{}
	for removed := true; removed; {
		removed = false
		for key, i := range infos {
			if failed[key] || children[key] > 0 || !doomed(key) {
				continue
			}
			var size int64
			if measure {
				size, _ = s.sn.Usage(ctx, key)
			}
			if err := s.sn.Remove(ctx, key); err != nil && !errdefs.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("remove snapshot %s: %w", key, err))
				failed[key] = true // leave it; do not retry forever
				continue
			}
			reclaimed += size
			delete(infos, key)
			delete(r.Layers, digest.Digest(key))
			if i.Parent != "" {
				children[i.Parent]--
			}
			removed = true
		}
	}
	return reclaimed, errs
}

// uses lists the blobs and layer snapshots (chain IDs) img needs. An image
// whose manifest or config is unreadable names what it still can (its
// recorded chain ID for the snapshots): the rest of the store is not held
// hostage.
func (s *Store) uses(ctx context.Context, img Image) (blobs, snaps []digest.Digest) {
	blobs = append(blobs, img.Target.Digest, img.ID)
	if m, err := s.Manifest(ctx, img); err == nil {
		for _, l := range m.Layers {
			blobs = append(blobs, l.Digest)
		}
	}
	if c, err := s.Config(ctx, img); err == nil {
		snaps = ChainIDs(c.RootFS.DiffIDs)
	} else if img.ChainID != "" {
		snaps = append(snaps, img.ChainID)
	}
	return blobs, snaps
}
