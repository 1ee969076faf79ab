package engine

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/berth-dev/berth/internal/build"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/imagearchive"
	"github.com/berth-dev/berth/internal/registry"
	imagetypes "github.com/moby/moby/api/types/image"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// VerifyLogin checks credentials with server's registry and keeps them
// nowhere (dockerd's POST /auth: the client stores them and sends them
// with each pull, push and build). It returns the registry's identity
// token when its token service hands one out.
func (e *Engine) VerifyLogin(ctx context.Context, server string, ac registry.AuthConfig) (string, error) {
	return e.registry.VerifyLogin(ctx, server, ac)
}

// Images lists stored images in Docker's summary shape.
func (e *Engine) Images(ctx context.Context) ([]imagetypes.Summary, error) {
	imgs, err := e.images.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]imagetypes.Summary, 0, len(imgs))
	for _, img := range imgs {
		s, err := e.images.Summary(ctx, img)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// ImageInspect returns Docker's inspect document for an image.
func (e *Engine) ImageInspect(ctx context.Context, ref string) (imagetypes.InspectResponse, error) {
	img, err := e.images.Get(ctx, ref)
	if err != nil {
		return imagetypes.InspectResponse{}, err
	}
	return e.images.Inspect(ctx, img)
}

// History returns an image's layer history, newest first.
func (e *Engine) History(ctx context.Context, ref string) ([]imagetypes.HistoryResponseItem, error) {
	img, err := e.images.Get(ctx, ref)
	if err != nil {
		return nil, err
	}
	return e.images.History(ctx, img)
}

// Tag gives the image src the name target.
func (e *Engine) Tag(ctx context.Context, src, target string) error {
	img, err := e.images.Get(ctx, src)
	if err != nil {
		return err
	}
	name, err := registry.Normalize(target)
	if err != nil {
		return err
	}
	return e.images.Tag(ctx, name, img)
}

// RemoveImage is `rmi`: untag or delete; images used by containers are
// refused unless force.
func (e *Engine) RemoveImage(ctx context.Context, ref string, force bool) ([]image.DeleteItem, error) {
	items, err := e.images.Delete(ctx, ref, force, func(id digest.Digest) bool { return e.imageInUse(id.String()) })
	if err != nil {
		return nil, err
	}
	if _, err := e.gc(ctx); err != nil {
		return items, err
	}
	return items, nil
}

// gc collects what no image, container or build cache entry holds.
func (e *Engine) gc(ctx context.Context) (int64, error) {
	snaps, blobs := build.CacheRefs(e.opts.Root)
	keep := func(key string) bool { return snaps[key] || e.keepSnapshot(key) }
	return e.images.GCKeeping(ctx, keep, func(d digest.Digest) bool { return blobs[d] })
}

// keepSnapshot protects container snapshots from image GC.
func (e *Engine) keepSnapshot(key string) bool {
	all, _ := e.listContainers()
	for _, c := range all {
		if c.Snapshot == key {
			return true
		}
	}
	return false
}

// PruneImages removes the images no container uses and collects the
// garbage; it returns what was deleted and the bytes reclaimed. The
// filters are dockerd's for POST /images/prune: dangling (default true:
// only images without a name; false: named ones too), until (created
// before), label and label! (the image config's labels).
func (e *Engine) PruneImages(ctx context.Context, filters map[string][]string) ([]image.DeleteItem, int64, error) {
	danglingOnly := true
	for _, v := range filters["dangling"] {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, 0, fmt.Errorf("invalid filter 'dangling=%s': %w", v, errdefs.ErrInvalidArgument)
		}
		danglingOnly = b
	}
	pf, err := parsePruneFilter(filters, time.Now(), "dangling")
	if err != nil {
		return nil, 0, err
	}
	imgs, err := e.images.List(ctx)
	if err != nil {
		return nil, 0, err
	}
	var items []image.DeleteItem
	for _, img := range imgs {
		if e.imageInUse(img.ID.String()) || (danglingOnly && len(img.Names) > 0) {
			continue
		}
		if pf.active() {
			// Created and labels come from the image config, as
			// dockerd's until and label filters read them.
			cfg, err := e.images.Config(ctx, img)
			if err != nil {
				return items, 0, err
			}
			var created time.Time
			if cfg.Created != nil {
				created = *cfg.Created
			}
			if pf.keeps(created, cfg.Config.Labels) {
				continue
			}
		}
		del, err := e.images.Delete(ctx, img.ID.String(), true, func(digest.Digest) bool { return false })
		if err != nil {
			return items, 0, err
		}
		items = append(items, del...)
	}
	n, err := e.gc(ctx)
	return items, n, err
}

// Save writes images to w as a docker-archive or OCI archive.
func (e *Engine) Save(ctx context.Context, w io.Writer, refs []string, format imagearchive.Format) error {
	var entries []imagearchive.Entry
	for _, ref := range refs {
		img, err := e.images.Get(ctx, ref)
		if err != nil {
			return err
		}
		ent := imagearchive.Entry{Manifest: img.Target}
		if name, err := registry.Normalize(ref); err == nil && contains(img.Names, name) {
			ent.Names = []string{name}
		} else {
			ent.Names = img.Names
		}
		entries = append(entries, ent)
	}
	return imagearchive.Save(ctx, w, e.content, entries, format)
}

// Load reads an archive and stores, unpacks and names its images; it
// returns the loaded names (or image IDs for unnamed images).
func (e *Engine) Load(ctx context.Context, r io.Reader, events func(Event)) ([]string, error) {
	entries, err := imagearchive.Load(ctx, r, e.content)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, ent := range entries {
		img, err := e.unpackLocal(ctx, ent.Manifest, events)
		if err != nil {
			return out, err
		}
		if len(ent.Names) == 0 {
			out = append(out, img.ID.String())
		}
		for _, n := range ent.Names {
			if err := e.images.Tag(ctx, n, img); err != nil {
				return out, err
			}
			out = append(out, n)
		}
	}
	return out, nil
}

// Import makes a one-layer image from a rootfs tarball, named ref if given.
func (e *Engine) Import(ctx context.Context, r io.Reader, ref string, opts imagearchive.ImportOptions) (string, error) {
	name := ""
	if ref != "" {
		n, err := registry.Normalize(ref)
		if err != nil {
			return "", err
		}
		name = n
	}
	ent, err := imagearchive.Import(ctx, r, e.content, opts)
	if err != nil {
		return "", err
	}
	img, err := e.unpackLocal(ctx, ent.Manifest, nil)
	if err != nil {
		return "", err
	}
	if name != "" {
		if err := e.images.Tag(ctx, name, img); err != nil {
			return "", err
		}
	}
	return img.ID.String(), nil
}

// unpackLocal runs the fetch pipeline over blobs already in the content store.
func (e *Engine) unpackLocal(ctx context.Context, m ocispec.Descriptor, events func(Event)) (image.Image, error) {
	progress := serialize(events)
	return e.images.Fetch(ctx, image.FetchOptions{
		Fetcher:      contentFetcher{e},
		Manifest:     m,
		MaxLayerSize: e.opts.MaxLayerSize,
		Progress: func(p image.Progress) {
			progress(Event{ID: p.ID, Status: p.Action, Current: p.Current, Total: p.Total})
		},
	})
}

type contentFetcher struct{ e *Engine }

func (f contentFetcher) Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	r, err := f.e.content.Open(ctx, desc.Digest)
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", desc.Digest, err)
	}
	return r, nil
}

func contains(list []string, s string) bool {
	for _, l := range list {
		if l == s {
			return true
		}
	}
	return false
}
