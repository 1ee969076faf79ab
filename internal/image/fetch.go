package image

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/timing"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
)

// Fetch stores a manifest, its config and its layers in the content store
// and unpacks the layers into snapshots, streaming each layer from the
// fetcher through the digest checks into its snapshot (one read). Layers
// whose snapshot already exists are not unpacked again. Nothing becomes
// visible unless verified. The image is recorded (dangling if new, keeping
// its names if known) so that GC keeps it; Tag names it.
func (s *Store) Fetch(ctx context.Context, opts FetchOptions) (Image, error) {
	timing.Mark("image", "fetch: start")
	defer timing.Mark("image", "fetch: end")
	if opts.Fetcher == nil {
		return Image{}, fmt.Errorf("fetch %s: %w: no fetcher", opts.Manifest.Digest, errdefs.ErrInvalidArgument)
	}
	var name, repoDigest string
	if opts.Name != "" {
		n, err := tagName(opts.Name)
		if err != nil {
			return Image{}, err
		}
		name = n
	}
	if opts.RepoDigest != "" {
		d, err := digestRef(opts.RepoDigest)
		if err != nil {
			return Image{}, err
		}
		repoDigest = d
	}
	release, err := s.Lease(ctx)
	if err != nil {
		return Image{}, err
	}
	defer release()

	// The manifest and config are verified in memory and written to the
	// content store while the layers download: their fsyncs need not
	// delay the first layer. Both are stored before the image record.
	mb, storeManifest, err := s.fetchSmallLater(ctx, opts.Fetcher, opts.Manifest, opts.ManifestBytes)
	if err != nil {
		return Image{}, fmt.Errorf("fetch manifest: %w", err)
	}
	timing.Mark("image", "fetch: manifest")
	m, err := parseManifest(mb)
	if err != nil {
		return Image{}, fmt.Errorf("fetch manifest %s: %w", opts.Manifest.Digest, err)
	}
	parallel := opts.Parallel
	if parallel <= 0 {
		parallel = 3
	}
	overlay := s.sn.OverlayWhiteouts()
	sched := newScheduler(m.Layers, overlay, parallel)
	early := s.startEarly(ctx, opts.Fetcher, m.Layers, sched.first())
	defer early.closeAll()
	cb, storeConfig, err := s.fetchSmallLater(ctx, opts.Fetcher, m.Config, nil)
	if err != nil {
		return Image{}, fmt.Errorf("fetch config: %w", err)
	}
	timing.Mark("image", "fetch: config")
	var cfg ocispec.Image
	if err := json.Unmarshal(cb, &cfg); err != nil {
		return Image{}, fmt.Errorf("%w: config %s: %v", errdefs.ErrInvalidArgument, m.Config.Digest, err)
	}
	diffIDs := cfg.RootFS.DiffIDs
	if len(diffIDs) != len(m.Layers) {
		return Image{}, fmt.Errorf("%w: config %s lists %d diff IDs for %d layers", errdefs.ErrInvalidArgument, m.Config.Digest, len(diffIDs), len(m.Layers))
	}
	for _, d := range diffIDs {
		if err := d.Validate(); err != nil {
			return Image{}, fmt.Errorf("%w: config %s: diff ID %q: %v", errdefs.ErrInvalidArgument, m.Config.Digest, d, err)
		}
	}
	chain := ChainIDs(diffIDs)
	// The layers are named without a flush; the ledger entry, written
	// before anything is named, makes a later boot discard them, and a
	// background syncfs after the pull makes them durable and drops it.
	// The layers download and unpack while the entry's fsync runs; only
	// their commits wait for it.
	ledger, err := s.planUnsynced(ctx, m.Layers, chain)
	if err != nil {
		return Image{}, fmt.Errorf("fetch %s: %w", opts.Manifest.Digest, err)
	}
	u := &unpacker{
		s:        s,
		fetcher:  opts.Fetcher,
		progress: &progressSink{fn: opts.Progress},
		overlay:  overlay,
		sched:    sched,
		early:    early,
		maxBytes: opts.MaxLayerSize,
		unsynced: ledger != nil,
		recorded: make(chan struct{}),
	}
	if ledger == nil {
		close(u.recorded)
	} else {
		go func() {
			u.recordErr = s.recordUnsynced(ctx, ledger)
			timing.Mark("image", "fetch: ledger written")
			close(u.recorded)
		}()
		defer func() {
			<-u.recorded
			if u.recordErr == nil {
				// Whatever the outcome: what a failed pull committed is kept too.
				s.settleLater(ledger.ID)
			}
		}()
	}
	var stored errgroup.Group
	stored.Go(func() error { return storeManifest(ctx) })
	stored.Go(func() error { return storeConfig(ctx) })
	sizes, err := u.run(ctx, m.Layers, diffIDs, chain)
	if serr := stored.Wait(); err == nil && serr != nil {
		err = fmt.Errorf("fetch %s: %w", opts.Manifest.Digest, serr)
	}
	if err != nil {
		return Image{}, err
	}

	target := opts.Manifest
	if target.MediaType == "" {
		target.MediaType = m.MediaType
		if target.MediaType == "" {
			target.MediaType = ocispec.MediaTypeImageManifest
		}
	}
	target.Size = int64(len(mb))
	img := Image{
		ID:      m.Config.Digest,
		Target:  target,
		Created: time.Now().UTC(),
		Platform: ocispec.Platform{
			OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant, OSVersion: cfg.OSVersion,
		},
	}
	if len(chain) > 0 {
		img.ChainID = chain[len(chain)-1]
	}
	if name != "" {
		img.Names = []string{name}
	}
	if repoDigest != "" {
		img.Digests = []string{repoDigest}
	}
	err = s.update(ctx, func(r *records) error {
		img = *r.upsert(img)
		if name != "" {
			img.LastTagTime = time.Now().UTC()
			r.Images[r.index(img.ID)].LastTagTime = img.LastTagTime
		}
		for i, sz := range sizes {
			if sz >= 0 {
				r.Layers[chain[i]] = sz
			}
		}
		return nil
	})
	if err != nil {
		return Image{}, fmt.Errorf("record image %s: %w", img.ID, err)
	}
	return img, nil
}
