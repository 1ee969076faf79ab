package build

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	goruntime "runtime"
	"sort"
	"strings"
	"sync"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
)

// buildRun is one Build call.
type buildRun struct {
	b        *Builder
	opts     Options
	df       *dockerfile
	bc       *buildContext
	cache    *cache
	progress *progress
	meta     *envMap // meta args (ARG before the first FROM) with their values
	platform string  // os/arch
	work     *lazyWorkDir
	stages   []*stageRun

	mu       sync.Mutex
	usedArgs map[string]bool
}

// stageRun is one stage's future: done closes when result or err is set.
type stageRun struct {
	idx    int
	base   string // FROM, expanded
	deps   []int
	done   chan struct{}
	result *state
	err    error
}

// HostPlatform is the only platform berth builds for: os/arch of this
// machine (no emulation).
func HostPlatform() string { return goruntime.GOOS + "/" + goruntime.GOARCH }

func checkPlatform(p string) error {
	if p == "" {
		return nil
	}
	norm := strings.ToLower(strings.TrimSuffix(p, "/"))
	if norm == HostPlatform() || (goruntime.GOARCH == "amd64" && norm == "linux/amd64/v1") {
		return nil
	}
	return fmt.Errorf("platform %q: berth builds only for the host platform %s (no emulation): %w", p, HostPlatform(), errdefs.ErrNotSupported)
}

// Build runs the Dockerfile and records the result as an image, tagged
// with opts.Tags. On failure no image is recorded and nothing is left
// running or mounted; steps that completed stay in the cache.
func (b *Builder) Build(ctx context.Context, opts Options) (Result, error) {
	if err := checkPlatform(opts.Platform); err != nil {
		return Result{}, err
	}
	if !b.Images.Snapshotter().OverlayWhiteouts() {
		return Result{}, fmt.Errorf("build needs the overlay snapshotter (layers are overlay upper directories): %w", errdefs.ErrNotSupported)
	}
	var names []string
	for _, t := range opts.Tags {
		n, err := image.NormalizeName(t)
		if err != nil {
			return Result{}, fmt.Errorf("invalid tag %q: %w", t, err)
		}
		names = append(names, n)
	}
	// The lease keeps GC off the snapshots and blobs steps write before
	// the image that references them is recorded.
	release, err := b.Images.Lease(ctx)
	if err != nil {
		return Result{}, err
	}
	defer release()
	work := &lazyWorkDir{b: b}
	defer work.release()
	bc, dfb, dfName, err := b.openContext(ctx, opts, work.get)
	if err != nil {
		return Result{}, err
	}
	defer bc.cleanup()
	df, err := parseDockerfile(dfName, dfb)
	if err != nil {
		return Result{}, err
	}
	r := &buildRun{
		b: b, opts: opts, df: df, bc: bc, work: work,
		cache:    &cache{dir: cacheDir(b.Root)},
		progress: &progress{w: opts.Progress},
		platform: HostPlatform(),
		usedArgs: map[string]bool{},
	}
	if err := r.evalMetaArgs(); err != nil {
		return Result{}, err
	}
	need, deps, bases, err := df.plan(opts.Target, r.meta)
	if err != nil {
		return Result{}, err
	}
	r.stages = make([]*stageRun, len(df.stages))
	for _, i := range need {
		r.stages[i] = &stageRun{idx: i, base: bases[i], deps: deps[i], done: make(chan struct{})}
	}
	// Every needed stage starts at once and waits for the stages it uses,
	// so independent stages run in parallel.
	g, gctx := errgroup.WithContext(ctx)
	for _, i := range need {
		s := r.stages[i]
		g.Go(func() error {
			res, err := r.runStage(gctx, s)
			s.result, s.err = res, err
			close(s.done)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return Result{}, err
	}
	r.warnUnusedArgs()
	final := r.stages[need[len(need)-1]].result
	return r.finish(ctx, final, names)
}

// waitStage returns stage j's result once it is built.
func (r *buildRun) waitStage(ctx context.Context, j int) (*state, error) {
	s := r.stages[j]
	if s == nil {
		return nil, fmt.Errorf("stage %d is not part of this build: %w", j, errdefs.ErrInvalidArgument)
	}
	select {
	case <-s.done:
		if s.err != nil {
			return nil, fmt.Errorf("stage %d failed", j)
		}
		return s.result, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// evalMetaArgs evaluates the ARGs before the first FROM (build args win)
// with the automatic platform args in scope.
func (r *buildRun) evalMetaArgs() error {
	r.meta = newEnvMap()
	os, arch, _ := strings.Cut(r.platform, "/")
	for k, v := range map[string]string{
		"TARGETPLATFORM": r.platform, "TARGETOS": os, "TARGETARCH": arch, "TARGETVARIANT": "",
		"BUILDPLATFORM": r.platform, "BUILDOS": os, "BUILDARCH": arch, "BUILDVARIANT": "",
	} {
		r.meta.Set(k, v)
	}
	lex := newLex(r.df)
	for _, a := range r.df.metaArgs {
		for _, kv := range a.Args {
			if v, ok := r.opts.BuildArgs[kv.Key]; ok {
				r.meta.Set(kv.Key, v)
				r.markUsed(kv.Key)
				continue
			}
			if kv.Value != nil {
				v, _, err := lex.ProcessWord(*kv.Value, r.meta)
				if err != nil {
					return atLine(r.df.name, &a, errors.Join(errdefs.ErrInvalidArgument, err))
				}
				r.meta.Set(kv.Key, v)
			} else if _, ok := r.meta.Get(kv.Key); !ok {
				r.meta.Set(kv.Key, "")
			}
		}
	}
	return nil
}

func (r *buildRun) markUsed(k string) {
	r.mu.Lock()
	r.usedArgs[k] = true
	r.mu.Unlock()
}

func (r *buildRun) warnUnusedArgs() {
	var unused []string
	for k := range r.opts.BuildArgs {
		if !r.usedArgs[k] && !predefinedArgs[k] {
			unused = append(unused, k)
		}
	}
	if len(unused) > 0 {
		sort.Strings(unused)
		r.progress.printf("[Warning] One or more build-args %v were not consumed\n", unused)
	}
}

// finish writes the final config and manifest, records the image through
// the image store's pipeline (every layer's snapshot exists, so nothing is
// unpacked) and tags it.
func (r *buildRun) finish(ctx context.Context, st *state, names []string) (Result, error) {
	cfg := st.Config
	if len(r.opts.Labels) > 0 {
		labels := map[string]string{}
		for k, v := range cfg.Config.Labels {
			labels[k] = v
		}
		for k, v := range r.opts.Labels {
			labels[k] = v
		}
		cfg.Config.Labels = labels
	}
	cb, err := json.Marshal(cfg)
	if err != nil {
		return Result{}, err
	}
	cdesc, err := r.putBlob(ctx, ocispec.MediaTypeImageConfig, cb)
	if err != nil {
		return Result{}, err
	}
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: cdesc, Layers: st.Layers}
	m.SchemaVersion = 2
	if m.Layers == nil {
		m.Layers = []ocispec.Descriptor{}
	}
	mb, err := json.Marshal(m)
	if err != nil {
		return Result{}, err
	}
	mdesc, err := r.putBlob(ctx, ocispec.MediaTypeImageManifest, mb)
	if err != nil {
		return Result{}, err
	}
	img, err := r.b.Images.Fetch(ctx, image.FetchOptions{Fetcher: contentFetcher{r.b.Images.Content()}, Manifest: mdesc})
	if err != nil {
		return Result{}, fmt.Errorf("record image: %w", err)
	}
	for _, n := range names {
		if err := r.b.Images.Tag(ctx, n, img); err != nil {
			return Result{}, err
		}
	}
	r.progress.printf("#%d writing image %s done\n", r.progress.n+1, img.ID)
	for _, n := range names {
		r.progress.printf("#%d naming to %s done\n", r.progress.n+1, n)
	}
	return Result{ID: img.ID.String(), Names: names}, nil
}

// tmpDir is where steps mount their rootfs and keep scratch files: the
// build's own work directory, reclaimed by a later build if this one is
// killed.
func (r *buildRun) tmpDir() (string, error) { return r.work.get() }

// lazyWorkDir makes the build's work directory (workDir) when a step
// first needs one: a fully cached build mounts nothing and skips it.
type lazyWorkDir struct {
	b    *Builder
	once sync.Once
	dir  string
	err  error
	done func()
}

func (w *lazyWorkDir) get() (string, error) {
	w.once.Do(func() { w.dir, w.done, w.err = w.b.workDir() })
	return w.dir, w.err
}

// release removes the directory if it was made. Called once, after every
// step has ended.
func (w *lazyWorkDir) release() {
	w.once.Do(func() {}) // no directory from here on
	if w.done != nil {
		w.done()
	}
}
