package image

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	imagetypes "github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/storage"
	"github.com/opencontainers/go-digest"
)

// dockerConfig is an image config with the fields Docker adds to OCI's.
type dockerConfig struct {
	dockerspec.DockerOCIImage
	Comment string `json:"comment,omitempty"`
}

// layers reads img's config and returns it with the chain ID of each layer.
func (s *Store) layers(ctx context.Context, img Image) (dockerConfig, []digest.Digest, error) {
	var c dockerConfig
	b, err := s.cs.ReadAll(ctx, img.ID, maxMetadataSize)
	if err != nil {
		return c, nil, fmt.Errorf("config of %s: %w", img.ID, err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, nil, fmt.Errorf("config of %s: %w", img.ID, err)
	}
	return c, ChainIDs(c.RootFS.DiffIDs), nil
}

// layerSize is a layer's unpacked size: recorded at unpack time, or
// measured when the layer came from elsewhere (a build).
func (s *Store) layerSize(ctx context.Context, r *records, chainID digest.Digest) int64 {
	if n, ok := r.Layers[chainID]; ok {
		return n
	}
	n, err := s.sn.Usage(ctx, chainID.String())
	if err != nil {
		return 0
	}
	return n
}

func (s *Store) sizeOf(ctx context.Context, r *records, chain []digest.Digest) int64 {
	var n int64
	for _, c := range chain {
		n += s.layerSize(ctx, r, c)
	}
	return n
}

func familiar(refs []string) []string {
	out := make([]string, 0, len(refs))
	for _, ref := range refs {
		out = append(out, FamiliarName(ref))
	}
	return out
}

func created(t *time.Time) int64 {
	if t == nil {
		return 0
	}
	return t.Unix()
}

// Inspect is `docker image inspect`'s view of img.
func (s *Store) Inspect(ctx context.Context, img Image) (imagetypes.InspectResponse, error) {
	r, err := s.load()
	if err != nil {
		return imagetypes.InspectResponse{}, err
	}
	c, chain, err := s.layers(ctx, img)
	if err != nil {
		return imagetypes.InspectResponse{}, err
	}
	layers := make([]string, 0, len(c.RootFS.DiffIDs))
	for _, d := range c.RootFS.DiffIDs {
		layers = append(layers, d.String())
	}
	resp := imagetypes.InspectResponse{
		ID:           img.ID.String(),
		RepoTags:     familiar(img.Names),
		RepoDigests:  familiar(img.Digests),
		Comment:      c.Comment,
		Author:       c.Author,
		Config:       &c.Config,
		Architecture: c.Architecture,
		Variant:      c.Variant,
		Os:           c.OS,
		OsVersion:    c.OSVersion,
		Size:         s.sizeOf(ctx, r, chain),
		GraphDriver:  &storage.DriverData{Name: s.sn.Driver(), Data: map[string]string{}},
		RootFS:       imagetypes.RootFS{Type: "layers", Layers: layers},
		Metadata:     imagetypes.Metadata{LastTagTime: img.LastTagTime},
	}
	if c.Created != nil {
		resp.Created = c.Created.UTC().Format(time.RFC3339Nano)
	}
	return resp, nil
}

// Summary is img's row in `docker images` (Containers and SharedSize are
// -1: not computed, as Docker reports them there; see Usage).
func (s *Store) Summary(ctx context.Context, img Image) (imagetypes.Summary, error) {
	r, err := s.load()
	if err != nil {
		return imagetypes.Summary{}, err
	}
	c, chain, err := s.layers(ctx, img)
	if err != nil {
		return imagetypes.Summary{}, err
	}
	return s.summary(ctx, r, img, c, chain), nil
}

func (s *Store) summary(ctx context.Context, r *records, img Image, c dockerConfig, chain []digest.Digest) imagetypes.Summary {
	target := img.Target
	labels := c.Config.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	return imagetypes.Summary{
		Containers:  -1,
		Created:     created(c.Created),
		ID:          img.ID.String(),
		Labels:      labels,
		RepoDigests: familiar(img.Digests),
		RepoTags:    familiar(img.Names),
		SharedSize:  -1,
		Size:        s.sizeOf(ctx, r, chain),
		Descriptor:  &target,
	}
}

// History is `docker history`: newest first; only the top entry carries
// the image ID (Docker prints "<missing>" for the others, whose
// intermediate images were never stored), sizes are per layer.
func (s *Store) History(ctx context.Context, img Image) ([]imagetypes.HistoryResponseItem, error) {
	r, err := s.load()
	if err != nil {
		return nil, err
	}
	c, chain, err := s.layers(ctx, img)
	if err != nil {
		return nil, err
	}
	type entry struct {
		created     int64
		by, comment string
		empty       bool
	}
	var entries []entry
	for _, h := range c.History {
		entries = append(entries, entry{created(h.Created), h.CreatedBy, h.Comment, h.EmptyLayer})
	}
	if len(entries) == 0 { // an image without history: one line per layer
		for range chain {
			entries = append(entries, entry{created: created(c.Created)})
		}
	}
	out := make([]imagetypes.HistoryResponseItem, 0, len(entries))
	layer := 0
	for _, e := range entries {
		item := imagetypes.HistoryResponseItem{ID: "<missing>", Created: e.created, CreatedBy: e.by, Comment: e.comment}
		if !e.empty && layer < len(chain) {
			item.Size = s.layerSize(ctx, r, chain[layer])
			layer++
		}
		out = append(out, item)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	if len(out) > 0 {
		out[0].ID = img.ID.String()
		out[0].Tags = familiar(img.Names)
	}
	return out, nil
}

// Usage is the images part of `docker system df`: every image with its
// shared size (layers another image also uses) and container count
// (containers may be nil), the total size counting each layer once, and
// what removing the images no container uses would reclaim.
func (s *Store) Usage(ctx context.Context, containers func(digest.Digest) int64) (imagetypes.DiskUsage, error) {
	r, err := s.load()
	if err != nil {
		return imagetypes.DiskUsage{}, err
	}
	type loaded struct {
		img   Image
		c     dockerConfig
		chain []digest.Digest
		n     int64
	}
	var all []loaded
	users := map[digest.Digest]int{}
	for _, img := range r.Images {
		c, chain, err := s.layers(ctx, img)
		if err != nil {
			continue // a broken image does not hide the others
		}
		n := int64(-1)
		if containers != nil {
			n = containers(img.ID)
		}
		all = append(all, loaded{img, c, chain, n})
		for _, l := range uniq(chain) {
			users[l]++
		}
	}
	du := imagetypes.DiskUsage{TotalCount: int64(len(all))}
	active := map[digest.Digest]bool{}
	for _, l := range all {
		sum := s.summary(ctx, r, l.img, l.c, l.chain)
		sum.Containers = l.n
		sum.SharedSize = 0
		for _, c := range uniq(l.chain) {
			if users[c] > 1 {
				sum.SharedSize += s.layerSize(ctx, r, c)
			}
			if l.n > 0 {
				active[c] = true
			}
		}
		if l.n > 0 {
			du.ActiveCount++
		}
		du.Items = append(du.Items, sum)
	}
	for c := range users {
		n := s.layerSize(ctx, r, c)
		du.TotalSize += n
		if !active[c] {
			du.Reclaimable += n
		}
	}
	return du, nil
}

func uniq(ds []digest.Digest) []digest.Digest {
	seen := map[digest.Digest]bool{}
	out := ds[:0:0]
	for _, d := range ds {
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	return out
}
