package imagearchive

import (
	"encoding/json"
	"fmt"
	"runtime"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Annotations that name an image in an OCI layout's index.json. containerd
// and docker 25+ write the full name under io.containerd.image.name and the
// tag under ref.name; skopeo and podman write only ref.name, which is then
// either a full name or a bare tag.
const (
	annotationContainerdName = "io.containerd.image.name"
	annotationRefName        = ocispec.AnnotationRefName
)

// ociEntries returns one entry per image named in index.json. Every blob an
// image needs must have been in the archive: a layout that leans on blobs
// it does not carry is refused, even when they happen to be in the store.
func (l *loader) ociEntries(ac *archiveContents) ([]Entry, error) {
	layout := ac.meta["oci-layout"]
	if layout == nil {
		return nil, fmt.Errorf("%w: index.json without oci-layout", errdefs.ErrInvalidArgument)
	}
	var hdr ocispec.ImageLayout
	if err := json.Unmarshal(layout, &hdr); err != nil || hdr.Version == "" {
		return nil, fmt.Errorf("member %q: %w: not an OCI layout header", "oci-layout", errdefs.ErrInvalidArgument)
	}
	var idx ocispec.Index
	if err := json.Unmarshal(ac.meta["index.json"], &idx); err != nil {
		return nil, fmt.Errorf("member %q: %w: %v", "index.json", errdefs.ErrInvalidArgument, err)
	}
	var entries []Entry
	for i, desc := range idx.Manifests {
		ref := fmt.Sprintf("index.json manifest %d (%s)", i, desc.Digest)
		mdesc, err := l.platformManifest(ac, ref, desc, 0)
		if err != nil {
			return nil, err
		}
		e := Entry{Manifest: mdesc}
		name, err := ociName(desc.Annotations)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", ref, err)
		}
		if name != "" {
			e.Names = []string{name}
		}
		entries = mergeEntry(entries, e)
	}
	return entries, nil
}

// platformManifest checks that an image manifest and everything it
// references came with the archive; for an index it picks the manifest for
// this machine (linux/GOARCH), since an Entry is a platform manifest.
func (l *loader) platformManifest(ac *archiveContents, ref string, desc ocispec.Descriptor, depth int) (ocispec.Descriptor, error) {
	if depth > 4 {
		return ocispec.Descriptor{}, fmt.Errorf("%s: %w: indexes nested too deep", ref, errdefs.ErrInvalidArgument)
	}
	if !ac.digests[desc.Digest] {
		return ocispec.Descriptor{}, fmt.Errorf("%s: %w: blob %s not in archive", ref, errdefs.ErrInvalidArgument, desc.Digest)
	}
	raw, err := l.cs.ReadAll(l.ctx, desc.Digest, maxMetaSize)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("%s: %w", ref, err)
	}
	if desc.MediaType == "" {
		// The media type is required in descriptors, but some writers
		// leave it to the blob itself.
		var probe struct {
			MediaType string          `json:"mediaType"`
			Manifests json.RawMessage `json:"manifests"`
		}
		_ = json.Unmarshal(raw, &probe) // a bad blob fails below, by its media type
		switch {
		case probe.MediaType != "":
			desc.MediaType = probe.MediaType
		case probe.Manifests != nil:
			desc.MediaType = ocispec.MediaTypeImageIndex
		default:
			desc.MediaType = ocispec.MediaTypeImageManifest
		}
	}
	switch desc.MediaType {
	case ocispec.MediaTypeImageIndex, mediaTypeDockerList:
		var idx ocispec.Index
		if err := json.Unmarshal(raw, &idx); err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("%s: %w: %v", ref, errdefs.ErrInvalidArgument, err)
		}
		for _, child := range idx.Manifests {
			if child.Platform != nil && child.Platform.OS == "linux" && child.Platform.Architecture == runtime.GOARCH {
				return l.platformManifest(ac, ref+" → "+child.Digest.String(), child, depth+1)
			}
		}
		return ocispec.Descriptor{}, fmt.Errorf("%s: %w: no manifest for linux/%s", ref, errdefs.ErrNotFound, runtime.GOARCH)
	case ocispec.MediaTypeImageManifest, mediaTypeDockerManifest:
	default:
		return ocispec.Descriptor{}, fmt.Errorf("%s: %w: unsupported media type %q", ref, errdefs.ErrInvalidArgument, desc.MediaType)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("%s: %w: %v", ref, errdefs.ErrInvalidArgument, err)
	}
	for _, b := range append([]ocispec.Descriptor{m.Config}, m.Layers...) {
		if !ac.digests[b.Digest] {
			return ocispec.Descriptor{}, fmt.Errorf("%s: %w: blob %s not in archive", ref, errdefs.ErrInvalidArgument, b.Digest)
		}
	}
	out := ocispec.Descriptor{MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size, Platform: desc.Platform}
	if out.Platform == nil {
		cfgRaw, err := l.cs.ReadAll(l.ctx, m.Config.Digest, maxMetaSize)
		if err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("%s: config: %w", ref, err)
		}
		var cfg ocispec.Image
		if err := json.Unmarshal(cfgRaw, &cfg); err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("%s: config %s: %w: %v", ref, m.Config.Digest, errdefs.ErrInvalidArgument, err)
		}
		out.Platform = configPlatform(cfg)
	}
	return out, nil
}

// ociName reads an image's name from its index.json annotations. A bare tag
// in ref.name ("latest", as docker 25+ and `skopeo copy oci:DIR:latest`
// write) names no repository, so the image stays unnamed.
func ociName(ann map[string]string) (string, error) {
	if n := ann[annotationContainerdName]; n != "" {
		return normalizeName(n)
	}
	n := ann[annotationRefName]
	if n == "" || !strings.ContainsAny(n, "/:@") {
		return "", nil
	}
	return normalizeName(n)
}
