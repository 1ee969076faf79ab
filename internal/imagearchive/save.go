package imagearchive

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/archive"
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
	written map[digest.Digest]int64 // blob → size in the archive
	sizes   map[digest.Digest]*measurement
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

// blob streams a stored blob into the archive as it is and returns its size.
func (s *saver) blob(d digest.Digest) (int64, error) {
	if size, ok := s.written[d]; ok {
		return size, nil
	}
	f, err := s.cs.Open(s.ctx, d)
	if err != nil {
		return 0, fmt.Errorf("blob %s: %w", d, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("blob %s: %w", d, err)
	}
	if err := s.header(blobPath(d), st.Size()); err != nil {
		return 0, fmt.Errorf("blob %s: %w", d, err)
	}
	if _, err := io.CopyN(s.tw, ctxReader{s.ctx, f}, st.Size()); err != nil {
		return 0, fmt.Errorf("blob %s: %w", d, err)
	}
	s.written[d] = st.Size()
	return st.Size(), nil
}

// uncompressedLayer writes a layer as the uncompressed tar a docker-archive
// holds, named by its diff_id. A compressed blob is decompressed twice: a
// tar header needs the size before the content, and a first pass that only
// counts (and checks the diff_id) costs CPU but neither memory nor a
// temporary copy of the layer on disk. The first passes run ahead, in
// parallel (see measureAhead), so the archive is written at the speed of
// one decompression per layer.
func (s *saver) uncompressedLayer(layer ocispec.Descriptor, diffID digest.Digest) (int64, error) {
	if size, ok := s.written[diffID]; ok {
		return size, nil
	}
	if layer.Digest == diffID {
		return s.blob(diffID)
	}
	m := s.sizes[diffID]
	if m == nil { // not measured ahead: measure now
		m = &measurement{done: make(chan struct{})}
		m.size, m.err = s.decompressed(s.ctx, layer.Digest, diffID, nil, -1)
		close(m.done)
	}
	select {
	case <-m.done:
	case <-s.ctx.Done():
		return 0, s.ctx.Err()
	}
	if m.err != nil {
		return 0, m.err
	}
	if err := s.header(blobPath(diffID), m.size); err != nil {
		return 0, fmt.Errorf("layer %s: %w", layer.Digest, err)
	}
	if _, err := s.decompressed(s.ctx, layer.Digest, diffID, s.tw, m.size); err != nil {
		return 0, err
	}
	s.written[diffID] = m.size
	return m.size, nil
}

// measurement is the uncompressed size of one compressed layer, measured
// ahead of the writer.
type measurement struct {
	done chan struct{}
	size int64
	err  error
}

// measureAhead starts measuring every compressed layer, in archive order
// and at most GOMAXPROCS at a time. stop cancels what is still running and
// waits for it.
func (s *saver) measureAhead(images []image) (stop func()) {
	ctx, cancel := context.WithCancel(s.ctx)
	s.sizes = map[digest.Digest]*measurement{}
	type job struct{ blob, diffID digest.Digest }
	var jobs []job
	for _, img := range images {
		for i, l := range img.manifest.Layers {
			diffID := img.config.RootFS.DiffIDs[i]
			if l.Digest == diffID || s.sizes[diffID] != nil {
				continue
			}
			s.sizes[diffID] = &measurement{done: make(chan struct{})}
			jobs = append(jobs, job{l.Digest, diffID})
		}
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sem := make(chan struct{}, runtime.GOMAXPROCS(0))
		for _, j := range jobs {
			m := s.sizes[j.diffID]
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				m.err = ctx.Err()
				close(m.done)
				continue
			}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				m.size, m.err = s.decompressed(ctx, j.blob, j.diffID, nil, -1)
				close(m.done)
			}()
		}
	}()
	return func() { cancel(); wg.Wait() }
}

// decompressed reads blob d uncompressed into w (or only counts, w nil) and
// checks its digest against diffID. With size ≥ 0, exactly size bytes go to
// w, so a blob changed between the passes cannot corrupt the tar stream.
func (s *saver) decompressed(ctx context.Context, d, diffID digest.Digest, w io.Writer, size int64) (int64, error) {
	f, err := s.cs.Open(ctx, d)
	if err != nil {
		return 0, fmt.Errorf("layer %s: %w", d, err)
	}
	defer f.Close()
	rc, _, err := archive.Decompress(f)
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
		n, err = io.CopyN(dst, ctxReader{ctx, rc}, size)
	} else {
		n, err = io.Copy(dst, ctxReader{ctx, rc})
	}
	if err != nil {
		return 0, fmt.Errorf("layer %s: decompress: %w", d, err)
	}
	if dg.Digest() != diffID {
		return 0, fmt.Errorf("layer %s: %w: uncompressed content is %s, config says %s", d, errdefs.ErrInvalidArgument, dg.Digest(), diffID)
	}
	return n, nil
}

// saveDocker writes the layout `docker save` has written since docker 25:
// blobs/sha256/<hex> members (the config and the uncompressed layer tars,
// named by their diff_ids), manifest.json naming them, the legacy
// repositories file, and an OCI index.json over a manifest of those same
// uncompressed blobs. Every docker load and `podman load` follow
// manifest.json; podman 4.3 prefers the OCI index when it names a single
// image, and then keeps the full name (docker.io/library/busybox:latest,
// not localhost/busybox:latest) — measured with podman 4.3 on Debian 12.
func (s *saver) saveDocker(images []image) error {
	stop := s.measureAhead(images)
	defer stop()
	manifest := []dockerManifestEntry{}
	repos := map[string]map[string]string{}
	var index []ocispec.Descriptor
	for _, img := range images {
		cfgSize, err := s.blob(img.manifest.Config.Digest)
		if err != nil {
			return err
		}
		me := dockerManifestEntry{Config: blobPath(img.manifest.Config.Digest), RepoTags: []string{}, Layers: []string{}}
		m := ocispec.Manifest{
			MediaType: ocispec.MediaTypeImageManifest,
			Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: img.manifest.Config.Digest, Size: cfgSize},
			Layers:    []ocispec.Descriptor{},
		}
		m.SchemaVersion = 2
		for i, layer := range img.manifest.Layers {
			diffID := img.config.RootFS.DiffIDs[i]
			size, err := s.uncompressedLayer(layer, diffID)
			if err != nil {
				return err
			}
			me.Layers = append(me.Layers, blobPath(diffID))
			m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: diffID, Size: size})
		}
		mb, err := json.Marshal(m)
		if err != nil {
			return err
		}
		mdesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(mb), Size: int64(len(mb)), Platform: img.entry.Manifest.Platform}
		if _, done := s.written[mdesc.Digest]; !done {
			if err := s.file(blobPath(mdesc.Digest), mb); err != nil {
				return err
			}
			s.written[mdesc.Digest] = mdesc.Size
		}
		named, err := indexDescriptors(mdesc, img.entry.Names)
		if err != nil {
			return err
		}
		index = append(index, named...)
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
	if err := s.index(index); err != nil {
		return err
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

// indexDescriptors returns the index.json descriptors for one manifest:
// one per name, annotated the way containerd and docker 25+ do (full name
// and tag; see ociName), or one unannotated for an unnamed image.
func indexDescriptors(desc ocispec.Descriptor, names []string) ([]ocispec.Descriptor, error) {
	if len(names) == 0 {
		return []ocispec.Descriptor{desc}, nil
	}
	var out []ocispec.Descriptor
	for _, name := range names {
		full, err := normalizeName(name)
		if err != nil {
			return nil, err
		}
		_, _, tag, ok, err := tagged(full)
		if err != nil {
			return nil, err
		}
		named := desc
		named.Annotations = map[string]string{annotationContainerdName: full}
		if ok {
			named.Annotations[annotationRefName] = tag
		}
		out = append(out, named)
	}
	return out, nil
}

// index writes oci-layout and index.json.
func (s *saver) index(manifests []ocispec.Descriptor) error {
	if err := s.file(ocispec.ImageLayoutFile, []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return err
	}
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: manifests}
	if idx.Manifests == nil {
		idx.Manifests = []ocispec.Descriptor{}
	}
	idx.SchemaVersion = 2
	b, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	return s.file(ocispec.ImageIndexFile, b)
}

// saveOCI writes an OCI image layout with blobs as stored (compressed).
func (s *saver) saveOCI(images []image) error {
	var index []ocispec.Descriptor
	for _, img := range images {
		for _, d := range append([]ocispec.Descriptor{img.entry.Manifest, img.manifest.Config}, img.manifest.Layers...) {
			if _, err := s.blob(d.Digest); err != nil {
				return err
			}
		}
		desc := ocispec.Descriptor{
			MediaType: img.entry.Manifest.MediaType,
			Digest:    img.entry.Manifest.Digest,
			Size:      s.written[img.entry.Manifest.Digest],
			Platform:  img.entry.Manifest.Platform,
		}
		if desc.MediaType == "" {
			desc.MediaType = img.manifest.MediaType
		}
		if desc.MediaType == "" {
			desc.MediaType = ocispec.MediaTypeImageManifest
		}
		named, err := indexDescriptors(desc, img.entry.Names)
		if err != nil {
			return err
		}
		index = append(index, named...)
	}
	return s.index(index)
}
