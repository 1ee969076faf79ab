package build

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/errdefs"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// linkedCopy is a COPY/ADD --link after its sources are collected.
type linkedCopy struct {
	matches []srcMatch
	dest    string // relative to the rootfs
	toDir   bool
	chmod   int64
	// keepOwner: the sources come from a stage or image; without
	// --chown they keep their owners.
	keepOwner bool
	spec      string // the instruction, for the key
	sum       string // checksum of the sources
}

// copyLinked is COPY/ADD --link: the files go into a layer of their own,
// made on an empty directory instead of on the stage's rootfs, so the
// layer depends only on the instruction and the sources. That layer is
// cached under a key without the parent: when an earlier step changes,
// the step still runs (the stage's state is new), but the same blob (same
// digest, nothing to push again) is stacked on the new parent instead of
// being made again.
//
// Docker's semantics follow from the empty directory, as BuildKit
// documents them: the destination is a directory only when it ends in "/"
// or there are several sources (the previous state is not looked at, so
// its symlinks are not followed either), and the destination's parent
// directories are in the layer, mode 0755 and owned by --chown, so they
// replace the parent's metadata for those directories.
func (sc *stageCtx) copyLinked(ctx context.Context, req copyRequest, lc linkedCopy, title, createdBy string) error {
	return sc.step(ctx, title, createdBy, []string{"link", lc.spec, lc.sum}, func(ctx context.Context, next *state, log *stepLog) (bool, error) {
		uid, gid, err := sc.linkOwner(ctx, req.chown)
		if err != nil {
			return false, err
		}
		key := "link-" + stepKey("", "link", lc.spec, lc.sum, lc.dest, strconv.FormatBool(lc.toDir), strconv.Itoa(uid), strconv.Itoa(gid))
		var layer *state
		if !sc.r.opts.NoCache {
			layer = sc.r.cache.get(ctx, sc.r.b.Images, key)
		}
		if layer != nil && len(layer.Layers) == 1 {
			fmt.Fprintf(log, "reusing the linked layer %s\n", layer.Layers[0].Digest)
		} else {
			layer = &state{Key: key}
			empty, err := sc.r.fsStep(ctx, layer, func(ctx context.Context, rootfs string) error {
				own := owner{uid: uid, gid: gid, keep: lc.keepOwner && req.chown == ""}
				return applyTar(ctx, rootfs, func(tw *tar.Writer) error {
					done := map[string]bool{}
					for _, m := range lc.matches {
						if err := writeMatch(tw, rootfs, m, lc.dest, lc.toDir, own, lc.chmod, done); err != nil {
							return err
						}
					}
					return nil
				})
			})
			if err != nil {
				return false, err
			}
			if empty {
				return true, nil
			}
			if err := sc.r.cache.put(layer); err != nil {
				return false, err
			}
		}
		return false, sc.r.stackLayer(ctx, next, layer.Layers[0], layer.Config.RootFS.DiffIDs[0])
	})
}

// linkOwner resolves --chown for a linked layer: numbers as they are,
// names against the stage's /etc/passwd and /etc/group (read from a view
// of the current state, which the layer itself does not depend on).
func (sc *stageCtx) linkOwner(ctx context.Context, chown string) (int, int, error) {
	if chown == "" {
		return 0, 0, nil
	}
	if numericOwner(chown) {
		uid, gid, err := resolveChown("", chown)
		return uid, gid, err
	}
	dir, release, err := sc.r.viewState(ctx, sc.st)
	if err != nil {
		return 0, 0, err
	}
	defer release()
	return resolveChown(dir, chown)
}

// stackLayer puts an existing layer blob on top of next: the blob is
// unpacked into a new snapshot on next's layers (in overlay form, as a
// pull does) and committed under the new chain ID.
func (r *buildRun) stackLayer(ctx context.Context, next *state, layer ocispec.Descriptor, diffID digest.Digest) error {
	sn := r.b.Images.Snapshotter()
	parent := next.chainID()
	key := "build-" + randomID()
	if _, err := sn.Prepare(ctx, key, parent, nil); err != nil {
		return fmt.Errorf("prepare layer: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			_ = sn.Remove(context.WithoutCancel(ctx), key)
		}
	}()
	upper, err := sn.UpperDir(ctx, key)
	if err != nil {
		return err
	}
	blob, err := r.b.Images.Content().Open(ctx, layer.Digest)
	if err != nil {
		return fmt.Errorf("linked layer %s: %w", layer.Digest, err)
	}
	defer blob.Close()
	tr, _, err := archive.Decompress(blob)
	if err != nil {
		return fmt.Errorf("linked layer %s: %w", layer.Digest, err)
	}
	defer tr.Close()
	// Apply may stop at the end-of-archive marker: the diff ID covers
	// every byte.
	h := diffID.Algorithm().Digester()
	in := io.TeeReader(tr, h.Hash())
	if _, err := archive.Apply(ctx, upper, in, archive.ApplyOptions{Whiteouts: archive.WhiteoutsOverlay}); err != nil {
		return fmt.Errorf("linked layer %s: %w", layer.Digest, err)
	}
	if _, err := io.Copy(io.Discard, in); err != nil {
		return fmt.Errorf("linked layer %s: %w", layer.Digest, err)
	}
	if h.Digest() != diffID {
		return fmt.Errorf("linked layer %s: content has diff ID %s, want %s", layer.Digest, h.Digest(), diffID)
	}
	next.Config.RootFS.Type = "layers"
	next.Config.RootFS.DiffIDs = append(next.Config.RootFS.DiffIDs, diffID)
	next.Layers = append(next.Layers, layer)
	if err := archive.SyncDir(upper); err != nil {
		return fmt.Errorf("sync layer: %w", err)
	}
	if err := sn.Commit(ctx, next.chainID(), key, parent); err != nil && !errdefs.IsAlreadyExists(err) {
		return fmt.Errorf("commit layer: %w", err)
	}
	committed = true
	return nil
}

// numericOwner reports whether a --chown needs no passwd or group lookup:
// "UID" or "UID:GID".
func numericOwner(chown string) bool {
	u, g, hasGroup := strings.Cut(chown, ":")
	if _, err := strconv.Atoi(u); err != nil {
		return false
	}
	if !hasGroup {
		return true
	}
	_, err := strconv.Atoi(g)
	return err == nil
}
