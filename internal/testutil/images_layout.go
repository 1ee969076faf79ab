package testutil

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/opencontainers/go-digest"
	specsgo "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// imageFixture returns the layout <fixtures>/images/<name>, building it with
// build when it is missing or its stamp (imageFixtureVersion and the source
// rootfs's own stamp) changed. The layout is built in a temporary sibling
// and renamed into place, so a reader sees it whole or not at all; two
// processes that build at once both succeed (the loser's copy is dropped).
func imageFixture(name, rootfs string, build func(*layoutWriter) error) (*ImageLayout, error) {
	dir, err := imagesDir()
	if err != nil {
		return nil, err
	}
	src, _ := os.ReadFile(filepath.Join(rootfs, ".fixture-stamp"))
	stamp := imageFixtureVersion + " " + runtime.GOARCH + " " + string(src)
	out := filepath.Join(dir, name)
	if l, err := readStamped(out, stamp); err == nil {
		return l, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(dir, "."+name+".tmp.")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return nil, err
	}
	w, err := newLayoutWriter(tmp)
	if err != nil {
		return nil, err
	}
	if err := build(w); err != nil {
		return nil, fmt.Errorf("build image fixture %s: %w", name, err)
	}
	if err := os.WriteFile(filepath.Join(tmp, ".fixture-stamp"), []byte(stamp), 0o644); err != nil {
		return nil, err
	}
	if err := replaceDir(tmp, out); err != nil {
		if l, rerr := readStamped(out, stamp); rerr == nil {
			return l, nil // another process won the race
		}
		return nil, err
	}
	return ReadLayout(out)
}

// replaceDir renames tmp to out, moving an old out aside first.
func replaceDir(tmp, out string) error {
	if _, err := os.Lstat(out); err == nil {
		old, err := os.MkdirTemp(filepath.Dir(out), ".old.")
		if err != nil {
			return err
		}
		defer os.RemoveAll(old)
		if err := os.Rename(out, filepath.Join(old, "x")); err != nil {
			return err
		}
	}
	return os.Rename(tmp, out)
}

func readStamped(dir, stamp string) (*ImageLayout, error) {
	b, err := os.ReadFile(filepath.Join(dir, ".fixture-stamp"))
	if err != nil {
		return nil, err
	}
	if string(b) != stamp {
		return nil, errors.New("stale fixture")
	}
	return ReadLayout(dir)
}

func imagesDir() (string, error) {
	if d := os.Getenv(FixturesEnv); d != "" {
		return filepath.Join(d, "images"), nil
	}
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, ".cache", "fixtures", "images"), nil
}

// ReadLayout reads the single image of the OCI layout at dir.
func ReadLayout(dir string) (*ImageLayout, error) {
	var idx ocispec.Index
	if err := readJSON(filepath.Join(dir, "index.json"), &idx); err != nil {
		return nil, err
	}
	if len(idx.Manifests) != 1 {
		return nil, fmt.Errorf("layout %s: %d manifests, want 1", dir, len(idx.Manifests))
	}
	l := &ImageLayout{Dir: dir, Manifest: idx.Manifests[0]}
	var m ocispec.Manifest
	if err := readJSON(blobPath(dir, l.Manifest.Digest), &m); err != nil {
		return nil, err
	}
	if err := readJSON(blobPath(dir, m.Config.Digest), &l.Config); err != nil {
		return nil, err
	}
	l.Layers, l.ConfigDesc = m.Layers, m.Config
	if s := m.Annotations[unpackedAnnotation]; s != "" {
		if _, err := fmt.Sscan(s, &l.UnpackedSize); err != nil {
			return nil, fmt.Errorf("layout %s: %s: %w", dir, unpackedAnnotation, err)
		}
	}
	return l, nil
}

// unpackedAnnotation records ImageLayout.UnpackedSize in the manifest.
const unpackedAnnotation = "dev.berth.test.unpacked-size"

func blobPath(dir string, d digest.Digest) string {
	return filepath.Join(dir, "blobs", string(d.Algorithm()), d.Encoded())
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// layoutWriter collects layers, then writes config, manifest and index.
type layoutWriter struct {
	dir      string
	layers   []ocispec.Descriptor
	diffIDs  []digest.Digest
	history  []ocispec.History
	unpacked int64
}

func newLayoutWriter(dir string) (*layoutWriter, error) {
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, ocispec.ImageLayoutFile), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		return nil, err
	}
	return &layoutWriter{dir: dir}, nil
}

func (w *layoutWriter) add(l layer, createdBy string) {
	w.layers = append(w.layers, l.desc)
	w.diffIDs = append(w.diffIDs, l.diffID)
	w.unpacked += l.unpacked
	w.history = append(w.history, ocispec.History{Created: &imageCreated, CreatedBy: createdBy})
}

func (w *layoutWriter) finish(cfg ocispec.ImageConfig) error {
	img := ocispec.Image{
		Created:  &imageCreated,
		Platform: ocispec.Platform{Architecture: runtime.GOARCH, OS: "linux"},
		Config:   cfg,
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: w.diffIDs},
		History:  w.history,
	}
	cdesc, err := w.writeJSON(ocispec.MediaTypeImageConfig, img)
	if err != nil {
		return err
	}
	m := ocispec.Manifest{
		Versioned:   specsgo.Versioned{SchemaVersion: 2},
		MediaType:   ocispec.MediaTypeImageManifest,
		Config:      cdesc,
		Layers:      w.layers,
		Annotations: map[string]string{unpackedAnnotation: fmt.Sprint(w.unpacked)},
	}
	mdesc, err := w.writeJSON(ocispec.MediaTypeImageManifest, m)
	if err != nil {
		return err
	}
	mdesc.Annotations = map[string]string{ocispec.AnnotationRefName: LayoutTag}
	mdesc.Platform = &img.Platform
	idx := ocispec.Index{
		Versioned: specsgo.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{mdesc},
	}
	b, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(w.dir, ocispec.ImageIndexFile), b, 0o644)
}

func (w *layoutWriter) writeJSON(mediaType string, v any) (ocispec.Descriptor, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	d := ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(b), Size: int64(len(b))}
	return d, os.WriteFile(blobPath(w.dir, d.Digest), b, 0o644)
}
