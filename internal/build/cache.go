package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/internal/atomicfile"
	"github.com/berth-dev/berth/internal/image"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// state is a stage after some steps: the image config so far, the layer
// blobs, and the cache key that produced it. It is also a cache entry.
type state struct {
	Key    string                    `json:"key"`
	Config dockerspec.DockerOCIImage `json:"config"`
	Layers []ocispec.Descriptor      `json:"layers"`
}

func (s *state) clone() *state {
	b, _ := json.Marshal(s)
	var c state
	_ = json.Unmarshal(b, &c)
	return &c
}

// chainID is the snapshot of the state's top layer ("" for no layers).
func (s *state) chainID() string {
	ids := image.ChainIDs(s.Config.RootFS.DiffIDs)
	if len(ids) == 0 {
		return ""
	}
	return ids[len(ids)-1].String()
}

// stepKey is the cache key of a step: the parent's key and the step's
// parts, each length-prefixed so no two part lists collide.
func stepKey(parent string, parts ...string) string {
	h := sha256.New()
	for _, p := range append([]string{parent}, parts...) {
		fmt.Fprintf(h, "%d:%s\x00", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// cache is the step index under <root>/build-cache.
type cache struct{ dir string }

func cacheDir(root string) string { return filepath.Join(root, "build-cache") }

func (c *cache) indexPath(key string) string { return filepath.Join(c.dir, "index", key+".json") }

// get returns the cached state of key, or nil. An entry whose snapshot or
// blobs have been garbage-collected since is a miss, never half-trusted.
func (c *cache) get(ctx context.Context, is *image.Store, key string) *state {
	b, err := os.ReadFile(c.indexPath(key))
	if err != nil {
		return nil
	}
	var s state
	if json.Unmarshal(b, &s) != nil || s.Key != key || len(s.Layers) != len(s.Config.RootFS.DiffIDs) {
		return nil
	}
	if id := s.chainID(); id != "" {
		if _, err := is.Snapshotter().Stat(ctx, id); err != nil {
			return nil
		}
	}
	for _, l := range s.Layers {
		if _, err := is.Content().Info(ctx, l.Digest); err != nil {
			return nil
		}
	}
	return &s
}

// put records s under its key: temp then rename, so a reader sees the old
// entry, the new one, or none. No fsync: an entry is a hint checked on
// every read (a torn file does not parse, a missing layer is a miss), and
// a crash costs at most a rebuilt step.
func (c *cache) put(s *state) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	dir := filepath.Join(c.dir, "index")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("build cache: %w", err)
	}
	if err := atomicfile.Write(c.indexPath(s.Key), b, 0o600); err != nil {
		return fmt.Errorf("build cache: %w", err)
	}
	return nil
}

// CacheRefs lists what the build cache's entries hold: their top layer
// snapshots (GC keeps each with its parents) and their layer blobs. Image
// GC keeps both, so only `builder prune` drops cached steps.
func CacheRefs(root string) (snapshots map[string]bool, blobs map[digest.Digest]bool) {
	snapshots, blobs = map[string]bool{}, map[digest.Digest]bool{}
	ents, err := os.ReadDir(filepath.Join(cacheDir(root), "index"))
	if err != nil {
		return snapshots, blobs
	}
	for _, ent := range ents {
		b, err := os.ReadFile(filepath.Join(cacheDir(root), "index", ent.Name()))
		if err != nil {
			continue
		}
		var st state
		if json.Unmarshal(b, &st) != nil {
			continue
		}
		if id := st.chainID(); id != "" {
			snapshots[id] = true
		}
		for _, l := range st.Layers {
			blobs[l.Digest] = true
		}
	}
	return snapshots, blobs
}

// Prune removes the build cache index and the RUN cache mounts under root
// and returns the bytes freed. The layer snapshots and blobs cached steps
// made are then unreferenced: the caller runs the image store's GC to
// reclaim them.
func Prune(ctx context.Context, root string) (int64, error) {
	dir := cacheDir(root)
	var n int64
	for _, sub := range []string{"index", "mounts"} {
		p := filepath.Join(dir, sub)
		_ = filepath.WalkDir(p, func(_ string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				if fi, err := d.Info(); err == nil {
					n += fi.Size()
				}
			}
			return nil
		})
		// Rename first so a concurrent build sees no half-removed tree.
		tmp := p + ".prune"
		if err := os.Rename(p, tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return n, fmt.Errorf("builder prune: %w", err)
		}
		if err := os.RemoveAll(tmp); err != nil {
			return n, fmt.Errorf("builder prune: %w", err)
		}
	}
	return n, ctx.Err()
}

// digestOf hashes b (for config and manifest blobs).
func digestOf(b []byte) digest.Digest { return digest.FromBytes(b) }
