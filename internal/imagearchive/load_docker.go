package imagearchive

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Docker image manifest schema 2 media types: a docker-archive image is
// described with them, as `docker load` itself records it.
const (
	mediaTypeDockerManifest  = "application/vnd.docker.distribution.manifest.v2+json"
	mediaTypeDockerList      = "application/vnd.docker.distribution.manifest.list.v2+json"
	mediaTypeDockerConfig    = "application/vnd.docker.container.image.v1+json"
	mediaTypeDockerLayer     = "application/vnd.docker.image.rootfs.diff.tar"
	mediaTypeDockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip"
)

// dockerManifestEntry is one image in a docker-archive's manifest.json.
type dockerManifestEntry struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// dockerEntries builds a schema 2 manifest over each image's layers as the
// archive holds them (uncompressed, in every writer we know of) and stores it.
func (l *loader) dockerEntries(ac *archiveContents) ([]Entry, error) {
	var images []dockerManifestEntry
	if err := json.Unmarshal(ac.meta["manifest.json"], &images); err != nil {
		return nil, fmt.Errorf("manifest.json: %w: %v", errdefs.ErrInvalidArgument, err)
	}
	var entries []Entry
	for i, img := range images {
		ref := fmt.Sprintf("manifest.json image %d", i)
		e, err := l.dockerEntry(ac, ref, img)
		if err != nil {
			return nil, err
		}
		entries = mergeEntry(entries, e)
	}
	return entries, nil
}

func (l *loader) dockerEntry(ac *archiveContents, ref string, img dockerManifestEntry) (Entry, error) {
	cfgDesc, err := ac.resolve(ref, img.Config)
	if err != nil {
		return Entry{}, err
	}
	// Classic archives name the config <hex>.json by its digest; the store
	// verified blobs/<alg>/<hex> members, this checks the classic name.
	if want, ok := classicConfigDigest(img.Config); ok && want != cfgDesc.Digest {
		return Entry{}, fmt.Errorf("%s: member %q: %w: config digest is %s", ref, img.Config, errdefs.ErrInvalidArgument, cfgDesc.Digest)
	}
	raw, err := l.cs.ReadAll(l.ctx, cfgDesc.Digest, maxMetaSize)
	if err != nil {
		return Entry{}, fmt.Errorf("%s: config %q: %w", ref, img.Config, err)
	}
	var cfg ocispec.Image
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return Entry{}, fmt.Errorf("%s: config %q: %w: %v", ref, img.Config, errdefs.ErrInvalidArgument, err)
	}
	if len(cfg.RootFS.DiffIDs) != len(img.Layers) {
		return Entry{}, fmt.Errorf("%s: %w: %d layers but config %q lists %d diff_ids", ref, errdefs.ErrInvalidArgument, len(img.Layers), img.Config, len(cfg.RootFS.DiffIDs))
	}
	m := ocispec.Manifest{
		MediaType: mediaTypeDockerManifest,
		Config:    ocispec.Descriptor{MediaType: mediaTypeDockerConfig, Digest: cfgDesc.Digest, Size: cfgDesc.Size},
	}
	m.SchemaVersion = 2
	for i, name := range img.Layers {
		desc, err := ac.resolve(ref, name)
		if err != nil {
			return Entry{}, err
		}
		mt, err := l.layerMediaType(desc, cfg.RootFS.DiffIDs[i])
		if err != nil {
			return Entry{}, fmt.Errorf("%s: layer member %q: %w", ref, name, err)
		}
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: mt, Digest: desc.Digest, Size: desc.Size})
	}
	mb, err := json.Marshal(m)
	if err != nil {
		return Entry{}, err
	}
	mdesc := ocispec.Descriptor{
		MediaType: mediaTypeDockerManifest,
		Digest:    digest.FromBytes(mb),
		Size:      int64(len(mb)),
		Platform:  configPlatform(cfg),
	}
	if err := l.cs.WriteBlob(l.ctx, mdesc, bytes.NewReader(mb)); err != nil {
		return Entry{}, fmt.Errorf("%s: store manifest: %w", ref, err)
	}
	e := Entry{Manifest: mdesc}
	for _, tag := range img.RepoTags {
		n, err := normalizeName(tag)
		if err != nil {
			return Entry{}, fmt.Errorf("%s: RepoTags: %w", ref, err)
		}
		e.Names = appendUnique(e.Names, n)
	}
	return e, nil
}

// layerMediaType checks a layer blob against the config's diff_id. Every
// known writer stores uncompressed layer tars (the blob digest is the
// diff_id); `docker load` also accepts compressed ones, so a mismatching
// blob is decompressed once to compare its content's digest.
func (l *loader) layerMediaType(desc ocispec.Descriptor, diffID digest.Digest) (string, error) {
	if desc.Digest == diffID {
		return mediaTypeDockerLayer, nil
	}
	f, err := l.cs.Open(l.ctx, desc.Digest)
	if err != nil {
		return "", err
	}
	defer f.Close()
	rc, c, err := archive.Decompress(f)
	if err != nil || c == archive.Uncompressed {
		return "", fmt.Errorf("%w: diff_id mismatch: content is %s, config says %s", errdefs.ErrInvalidArgument, desc.Digest, diffID)
	}
	defer rc.Close()
	dg := diffID.Algorithm().Digester()
	if _, err := io.Copy(dg.Hash(), ctxReader{l.ctx, rc}); err != nil {
		return "", fmt.Errorf("%w: decompress: %v", errdefs.ErrInvalidArgument, err)
	}
	if dg.Digest() != diffID {
		return "", fmt.Errorf("%w: diff_id mismatch: uncompressed content is %s, config says %s", errdefs.ErrInvalidArgument, dg.Digest(), diffID)
	}
	if c == archive.Zstd {
		return ocispec.MediaTypeImageLayerZstd, nil
	}
	return mediaTypeDockerLayerGzip, nil
}

// classicConfigDigest returns the digest a classic config name (<hex>.json)
// promises.
func classicConfigDigest(name string) (digest.Digest, bool) {
	base := path.Base(name)
	if !strings.HasSuffix(base, ".json") {
		return "", false
	}
	d := digest.NewDigestFromEncoded(digest.SHA256, strings.TrimSuffix(base, ".json"))
	return d, d.Validate() == nil
}

func configPlatform(cfg ocispec.Image) *ocispec.Platform {
	if cfg.OS == "" && cfg.Architecture == "" {
		return nil
	}
	p := cfg.Platform
	return &p
}

// mergeEntry appends e, or adds its names to an earlier entry with the same
// manifest (an archive may list one image under several names).
func mergeEntry(entries []Entry, e Entry) []Entry {
	for i := range entries {
		if entries[i].Manifest.Digest == e.Manifest.Digest {
			for _, n := range e.Names {
				entries[i].Names = appendUnique(entries[i].Names, n)
			}
			return entries
		}
	}
	return append(entries, e)
}

func appendUnique(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}
