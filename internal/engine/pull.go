package engine

import (
	"context"
	"fmt"
	"runtime"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/registry"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Pull resolves ref on its registry and stores the image for the platform,
// unpacked and ready to run, under ref's name (a digest reference leaves the
// image untagged but findable by digest, like Docker). Credentials in
// opts.Auth go first; the engine's own config.json covers the rest.
func (e *Engine) Pull(ctx context.Context, ref string, opts PullOptions) (PullResult, error) {
	name, err := registry.Normalize(ref)
	if err != nil {
		return PullResult{}, err
	}
	platform, err := ParsePlatform(opts.Platform)
	if err != nil {
		return PullResult{}, err
	}
	rc := e.registry.WithCredentials(opts.Auth)
	Mark("pull: resolve")
	res, err := rc.Resolve(ctx, name, &platform)
	Mark("pull: resolved")
	if err != nil {
		return PullResult{}, fmt.Errorf("pull %s: %w", registry.FamiliarName(name), err)
	}
	out := PullResult{Name: res.Name, Digest: res.Digest}
	if cur, err := e.images.Get(ctx, res.Name); err == nil && cur.Target.Digest == res.Manifest.Digest {
		out.ImageID = cur.ID.String()
		out.UpToDate = true
		return out, e.images.AddDigest(ctx, cur, res.Digest)
	}
	progress := serialize(opts.Events)
	// Named and digested in the same records write as the image itself.
	tag := res.Name
	if strings.Contains(tag, "@") {
		tag = "" // a digest reference leaves the image untagged
	}
	img, err := e.images.Fetch(ctx, image.FetchOptions{
		Fetcher:       rc.Fetcher(res.Repo),
		Manifest:      res.Manifest,
		ManifestBytes: res.ManifestBytes,
		Name:          tag,
		RepoDigest:    res.Digest,
		MaxLayerSize:  e.opts.MaxLayerSize,
		Progress: func(p image.Progress) {
			progress(Event{ID: p.ID, Status: p.Action, Current: p.Current, Total: p.Total})
		},
	})
	if err != nil {
		return PullResult{}, fmt.Errorf("pull %s: %w", registry.FamiliarName(name), err)
	}
	out.ImageID = img.ID.String()
	Mark("pull: done")
	return out, nil
}

// PullAllTags pulls every tag of repository repo (`pull -a`; dockerd's
// POST /images/create with fromImage and no tag), one after the other, in
// the registry's order. Before each tag opts.Events gets an event without
// ID whose Status is "<tag>: Pulling from <path>", and "Digest: …" after
// it, as docker prints them. The result's Name is the repository; it is
// UpToDate when every tag was.
func (e *Engine) PullAllTags(ctx context.Context, repo string, opts PullOptions) (PullResult, error) {
	name, err := registry.Repository(repo)
	if err != nil {
		return PullResult{}, err
	}
	tags, err := e.registry.WithCredentials(opts.Auth).Tags(ctx, name)
	if err != nil {
		return PullResult{}, fmt.Errorf("pull %s: %w", registry.FamiliarRepository(name), err)
	}
	if len(tags) == 0 {
		return PullResult{}, fmt.Errorf("pull %s: %w: the repository has no tags", registry.FamiliarRepository(name), errdefs.ErrNotFound)
	}
	status := func(s string) {
		if opts.Events != nil {
			opts.Events(Event{Status: s})
		}
	}
	_, path, _ := strings.Cut(name, "/")
	out := PullResult{Name: name, UpToDate: true}
	for _, tag := range tags {
		status(tag + ": Pulling from " + path)
		res, err := e.Pull(ctx, name+":"+tag, opts)
		if err != nil {
			return out, err
		}
		if _, d, ok := strings.Cut(res.Digest, "@"); ok {
			status("Digest: " + d)
		}
		out.UpToDate = out.UpToDate && res.UpToDate
	}
	return out, nil
}

// ParsePlatform parses "os/arch[/variant]"; "" is the host platform.
func ParsePlatform(s string) (ocispec.Platform, error) {
	if s == "" {
		return ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}, nil
	}
	f := strings.Split(s, "/")
	if len(f) < 2 || len(f) > 3 || f[0] == "" || f[1] == "" {
		return ocispec.Platform{}, fmt.Errorf("invalid platform %q: want os/arch[/variant]: %w", s, errdefs.ErrInvalidArgument)
	}
	p := ocispec.Platform{OS: f[0], Architecture: f[1]}
	if len(f) == 3 {
		p.Variant = f[2]
	}
	return p, nil
}

// serialize makes fn safe to call from several goroutines.
func serialize(fn func(Event)) func(Event) {
	if fn == nil {
		return func(Event) {}
	}
	ch := make(chan struct{}, 1)
	return func(ev Event) {
		ch <- struct{}{}
		fn(ev)
		<-ch
	}
}
