package imagearchive

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// saver writes one archive. Blobs are written once however many entries
// share them; the archive-level files (manifest.json, index.json) come
// last, so an archive cut short by an error has none and no loader mistakes
// it for a complete one.
type saver struct {
	ctx     context.Context
	cs      *content.Store
	tw      *tar.Writer
	written map[digest.Digest]bool
	dirs    bool
}

// image is an entry's manifest and config, read back from the store.
type image struct {
	entry    Entry
	manifest ocispec.Manifest
	config   ocispec.Image
}

func (s *saver) readImage(e Entry) (image, error) {
	raw, err := s.cs.ReadAll(s.ctx, e.Manifest.Digest, maxMetaSize)
	if err != nil {
		return image{}, fmt.Errorf("manifest %s: %w", e.Manifest.Digest, err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return image{}, fmt.Errorf("manifest %s: %w: %v", e.Manifest.Digest, errdefs.ErrInvalidArgument, err)
	}
	if m.MediaType == ocispec.MediaTypeImageIndex || m.MediaType == mediaTypeDockerList || m.Config.Digest == "" {
		return image{}, fmt.Errorf("manifest %s: %w: not a platform manifest", e.Manifest.Digest, errdefs.ErrInvalidArgument)
	}
	cfgRaw, err := s.cs.ReadAll(s.ctx, m.Config.Digest, maxMetaSize)
	if err != nil {
		return image{}, fmt.Errorf("config %s: %w", m.Config.Digest, err)
	}
	var cfg ocispec.Image
	if err := json.Unmarshal(cfgRaw, &cfg); err != nil {
		return image{}, fmt.Errorf("config %s: %w: %v", m.Config.Digest, errdefs.ErrInvalidArgument, err)
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return image{}, fmt.Errorf("manifest %s: %w: %d layers but %d diff_ids", e.Manifest.Digest, errdefs.ErrInvalidArgument, len(m.Layers), len(cfg.RootFS.DiffIDs))
	}
	return image{entry: e, manifest: m, config: cfg}, nil
}

// header writes a tar header for a regular member. Times are fixed (the
// epoch) so that saving the same images twice gives the same bytes.
func (s *saver) header(name string, size int64) error {
	if !s.dirs {
		// Directory members first, as docker writes them: some readers
		// create files only inside directories they have seen.
		s.dirs = true
		for _, d := range []string{"blobs/", "blobs/sha256/"} {
			if err := s.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, ModTime: time.Unix(0, 0)}); err != nil {
				return err
			}
		}
	}
	return s.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: size, ModTime: time.Unix(0, 0)})
}

func (s *saver) file(name string, b []byte) error {
	if err := s.header(name, int64(len(b))); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if _, err := s.tw.Write(b); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

func blobPath(d digest.Digest) string { return "blobs/" + d.Algorithm().String() + "/" + d.Encoded() }

// blob streams a stored blob into the archive as it is.
func (s *saver) blob(d digest.Digest) error {
	if s.written[d] {
		return nil
	}
	f, err := s.cs.Open(s.ctx, d)
	if err != nil {
		return fmt.Errorf("blob %s: %w", d, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("blob %s: %w", d, err)
	}
	if err := s.header(blobPath(d), st.Size()); err != nil {
		return fmt.Errorf("blob %s: %w", d, err)
	}
	if _, err := io.Copy(s.tw, ctxReader{s.ctx, f}); err != nil {
		return fmt.Errorf("blob %s: %w", d, err)
	}
	s.written[d] = true
	return nil
}

// uncompressedLayer writes a layer as the uncompressed tar a docker-archive
// holds, named by its diff_id. A compressed blob is decompressed twice: a
// tar header needs the size before the content, and a first pass that only
// counts (and checks the diff_id) costs CPU but neither memory nor a
// temporary copy of the layer on disk.
func (s *saver) uncompressedLayer(layer ocispec.Descriptor, diffID digest.Digest) error {
	if s.written[diffID] {
		return nil
	}
	if layer.Digest == diffID {
		return s.blob(diffID)
	}
	size, err := s.decompressed(layer.Digest, diffID, nil, -1)
	if err != nil {
		return err
	}
	if err := s.header(blobPath(diffID), size); err != nil {
		return fmt.Errorf("layer %s: %w", layer.Digest, err)
	}
	if _, err := s.decompressed(layer.Digest, diffID, s.tw, size); err != nil {
		return err
	}
	s.written[diffID] = true
	return nil
}

// decompressed reads blob d uncompressed into w (or only counts, w nil) and
// checks its digest against diffID. With size ≥ 0, exactly size bytes go to
// w, so a blob changed between the passes cannot corrupt the tar stream.
func (s *saver) decompressed(d, diffID digest.Digest, w io.Writer, size int64) (int64, error) {
	f, err := s.cs.Open(s.ctx, d)
	if err != nil {
		return 0, fmt.Errorf("layer %s: %w", d, err)
	}
	defer f.Close()
	rc, _, err := decompress(f)
	if err != nil {
		return 0, fmt.Errorf("layer %s: %w", d, err)
	}
	defer rc.Close()
	dg := diffID.Algorithm().Digester()
	dst := io.Writer(dg.Hash())
	if w != nil {
		dst = io.MultiWriter(w, dst)
	}
	var n int64
	if size >= 0 {
		n, err = io.CopyN(dst, ctxReader{s.ctx, rc}, size)
	} else {
		n, err = io.Copy(dst, ctxReader{s.ctx, rc})
	}
	if err != nil {
		return 0, fmt.Errorf("layer %s: decompress: %w", d, err)
	}
	if dg.Digest() != diffID {
		return 0, fmt.Errorf("layer %s: %w: uncompressed content is %s, config says %s", d, errdefs.ErrInvalidArgument, dg.Digest(), diffID)
	}
	return n, nil
}

// saveDocker writes the layout `docker save` has written since docker 25
// minus its OCI index: blobs/sha256/<hex> members named in manifest.json,
// plus the legacy repositories file. Podman, skopeo and every docker load
// follow the paths in manifest.json, so no <id>/layer.tar tree is needed.
func (s *saver) saveDocker(images []image) error {
	var manifest []dockerManifestEntry
	repos := map[string]map[string]string{}
	for _, img := range images {
		if err := s.blob(img.manifest.Config.Digest); err != nil {
			return err
		}
		me := dockerManifestEntry{Config: blobPath(img.manifest.Config.Digest), RepoTags: []string{}}
		for i, layer := range img.manifest.Layers {
			diffID := img.config.RootFS.DiffIDs[i]
			if err := s.uncompressedLayer(layer, diffID); err != nil {
				return err
			}
			me.Layers = append(me.Layers, blobPath(diffID))
		}
		for _, name := range img.entry.Names {
			familiar, repo, tag, ok, err := tagged(name)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			me.RepoTags = appendUnique(me.RepoTags, familiar)
			if repos[repo] == nil {
				repos[repo] = map[string]string{}
			}
			if n := len(me.Layers); n > 0 {
				repos[repo][tag] = img.config.RootFS.DiffIDs[n-1].Encoded()
			}
		}
		manifest = append(manifest, me)
	}
	if len(repos) > 0 {
		b, err := json.Marshal(repos)
		if err != nil {
			return err
		}
		if err := s.file("repositories", b); err != nil {
			return err
		}
	}
	b, err := json.Marshal(manifest)
	if err != nil {
		return err
	}
	return s.file("manifest.json", b)
}

// saveOCI writes an OCI image layout with blobs as stored (compressed) and
// one index.json descriptor per name, annotated both ways (see ociName).
func (s *saver) saveOCI(images []image) error {
	if err := s.file(ocispec.ImageLayoutFile, []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return err
	}
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{}}
	idx.SchemaVersion = 2
	for _, img := range images {
		for _, d := range append([]ocispec.Descriptor{img.entry.Manifest, img.manifest.Config}, img.manifest.Layers...) {
			if err := s.blob(d.Digest); err != nil {
				return err
			}
		}
		desc := ocispec.Descriptor{
			MediaType: img.entry.Manifest.MediaType,
			Digest:    img.entry.Manifest.Digest,
			Size:      img.entry.Manifest.Size,
			Platform:  img.entry.Manifest.Platform,
		}
		if desc.MediaType == "" {
			desc.MediaType = img.manifest.MediaType
		}
		if desc.MediaType == "" {
			desc.MediaType = ocispec.MediaTypeImageManifest
		}
		if desc.Size == 0 {
			info, err := s.cs.Info(s.ctx, desc.Digest)
			if err != nil {
				return fmt.Errorf("manifest %s: %w", desc.Digest, err)
			}
			desc.Size = info.Size
		}
		if len(img.entry.Names) == 0 {
			idx.Manifests = append(idx.Manifests, desc)
		}
		for _, name := range img.entry.Names {
			full, err := normalizeName(name)
			if err != nil {
				return err
			}
			_, _, tag, ok, err := tagged(full)
			if err != nil {
				return err
			}
			named := desc
			named.Annotations = map[string]string{annotationContainerdName: full}
			if ok {
				named.Annotations[annotationRefName] = tag
			}
			idx.Manifests = append(idx.Manifests, named)
		}
	}
	b, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	return s.file(ocispec.ImageIndexFile, b)
}
