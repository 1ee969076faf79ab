package engine

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/registry"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Push uploads the image named ref to its registry: only blobs the registry
// lacks are sent, and blobs another repository of the same registry holds
// (known from the local image names) are mounted instead of uploaded.
func (e *Engine) Push(ctx context.Context, ref string, events func(Event)) (PushResult, error) {
	return e.PushWithAuth(ctx, ref, events, nil)
}

// PushWithAuth is Push with credentials the caller brought (berthd:
// X-Registry-Auth); registries they do not cover use the engine's own
// config.json.
func (e *Engine) PushWithAuth(ctx context.Context, ref string, events func(Event), auth registry.Credentials) (PushResult, error) {
	name, err := registry.Normalize(ref)
	if err != nil {
		return PushResult{}, err
	}
	img, err := e.images.Get(ctx, name)
	if err != nil {
		return PushResult{}, fmt.Errorf("push %s: %w", registry.FamiliarName(name), err)
	}
	m, err := e.images.Manifest(ctx, img)
	if err != nil {
		return PushResult{}, err
	}
	raw, err := e.content.ReadAll(ctx, img.Target.Digest, 4<<20)
	if err != nil {
		return PushResult{}, err
	}
	pi := registry.PushImage{
		Manifest:      img.Target,
		ManifestBytes: raw,
		Config:        m.Config,
		Layers:        m.Layers,
		MountFrom:     e.mountSources(ctx, name, m),
	}
	progress := serialize(events)
	d, err := e.registry.WithCredentials(auth).Push(ctx, name, contentSource{e}, pi, func(p registry.PushProgress) {
		progress(Event{ID: p.ID, Status: p.Action, Current: p.Current, Total: p.Total})
	})
	if err != nil {
		return PushResult{}, fmt.Errorf("push %s: %w", registry.FamiliarName(name), err)
	}
	repo := repoOf(name)
	if err := e.images.AddDigest(ctx, img, repo+"@"+d.String()); err != nil {
		return PushResult{}, err
	}
	tag := "latest"
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		tag = name[i+1:]
	}
	return PushResult{Name: name, Tag: tag, Digest: d, Size: int64(len(raw))}, nil
}

// PushAllTags pushes every local tag of repository repo (`push -a`;
// dockerd's POST /images/{name}/push without a tag), in tag order. After
// each tag events gets an event without ID, "<tag>: digest: <digest>
// size: <n>", as docker prints it. It returns the results in that order.
func (e *Engine) PushAllTags(ctx context.Context, repo string, events func(Event)) ([]PushResult, error) {
	return e.PushAllTagsWithAuth(ctx, repo, events, nil)
}

// PushAllTagsWithAuth is PushAllTags with credentials the caller brought
// (see PushWithAuth).
func (e *Engine) PushAllTagsWithAuth(ctx context.Context, repo string, events func(Event), auth registry.Credentials) ([]PushResult, error) {
	name, err := registry.Repository(repo)
	if err != nil {
		return nil, err
	}
	imgs, err := e.images.List(ctx)
	if err != nil {
		return nil, err
	}
	var refs []string
	for _, img := range imgs {
		for _, n := range img.Names {
			if strings.HasPrefix(n, name+":") {
				refs = append(refs, n)
			}
		}
	}
	if len(refs) == 0 {
		return nil, fmt.Errorf("%w: An image does not exist locally with the tag: %s", errdefs.ErrNotFound, registry.FamiliarRepository(name))
	}
	slices.Sort(refs)
	var out []PushResult
	for _, ref := range refs {
		res, err := e.PushWithAuth(ctx, ref, events, auth)
		if err != nil {
			return out, err
		}
		if events != nil {
			events(Event{Status: fmt.Sprintf("%s: digest: %s size: %d", res.Tag, res.Digest, res.Size)})
		}
		out = append(out, res)
	}
	return out, nil
}

// mountSources maps each blob of m to the other repositories on name's
// registry that local images (holding the same blob) came from.
func (e *Engine) mountSources(ctx context.Context, name string, m ocispec.Manifest) map[digest.Digest][]string {
	host := hostOf(name)
	self := repoOf(name)
	want := map[digest.Digest]bool{m.Config.Digest: true}
	for _, l := range m.Layers {
		want[l.Digest] = true
	}
	out := map[digest.Digest][]string{}
	imgs, err := e.images.List(ctx)
	if err != nil {
		return out
	}
	for _, other := range imgs {
		var repos []string
		for _, n := range append(append([]string{}, other.Names...), other.Digests...) {
			if r := repoOf(n); hostOf(n) == host && r != self {
				repos = append(repos, r)
			}
		}
		if len(repos) == 0 {
			continue
		}
		om, err := e.images.Manifest(ctx, other)
		if err != nil {
			continue
		}
		for _, l := range append([]ocispec.Descriptor{om.Config}, om.Layers...) {
			if want[l.Digest] {
				out[l.Digest] = appendNew(out[l.Digest], repos...)
			}
		}
	}
	return out
}

// repoOf strips the tag or digest from a normalized reference.
func repoOf(name string) string {
	if i := strings.Index(name, "@"); i >= 0 {
		name = name[:i]
	}
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		name = name[:i]
	}
	return name
}

func hostOf(name string) string {
	if i := strings.Index(name, "/"); i >= 0 {
		return name[:i]
	}
	return name
}

func appendNew(list []string, items ...string) []string {
	for _, it := range items {
		found := false
		for _, l := range list {
			found = found || l == it
		}
		if !found {
			list = append(list, it)
		}
	}
	return list
}

// contentSource serves pushed blobs from the content store.
type contentSource struct{ e *Engine }

func (s contentSource) Open(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	return s.e.content.Open(ctx, desc.Digest)
}
