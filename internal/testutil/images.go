package testutil

import (
	"archive/tar"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Test images are OCI image layouts (oci-layout, index.json, blobs/sha256)
// under <fixtures>/images/<name>, each holding one image tagged LayoutTag.
// Layers are written here with archive/tar and compress/gzip from the
// rootfs fixtures, deterministically (lexical order, no host user names, no
// gzip timestamp), so a rebuild gives the same digests. skopeo and umoci
// read the same layouts, which is what makes them interop fixtures.

// imageFixtureVersion is part of every image fixture's stamp: bump it when
// the way an image is built changes, so cached layouts are rebuilt.
const imageFixtureVersion = "images-2"

// LayoutTag is the org.opencontainers.image.ref.name of the image in every
// layout this file builds ("oci:DIR:latest" to skopeo and umoci).
const LayoutTag = "latest"

// imageCreated is the creation time of every test image: fixed, so that
// configs (and so image IDs) do not change from one build to the next.
var imageCreated = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// ImageLayout is a test image stored as an OCI image layout.
type ImageLayout struct {
	Dir        string             // the layout directory
	Manifest   ocispec.Descriptor // the image manifest, as index.json lists it
	ConfigDesc ocispec.Descriptor
	Config     ocispec.Image // the image config
	Layers     []ocispec.Descriptor
	// UnpackedSize is the sum of the layers' uncompressed tar sizes.
	UnpackedSize int64
}

// OCIRef names the image to skopeo and umoci: "oci:DIR:latest".
func (l *ImageLayout) OCIRef() string { return "oci:" + l.Dir + ":" + LayoutTag }

// ID is the image ID Docker (and berth) show: the config's digest.
func (l *ImageLayout) ID() digest.Digest { return l.ConfigDesc.Digest }

// Debian image facts the end-to-end tests check: the top layer deletes
// DebianDeleted (a file and a directory present in lower layers) and makes
// DebianOpaqueDir opaque, so only DebianOpaqueFile remains in it.
var DebianDeleted = []string{"/etc/issue.net", "/usr/share/doc"}

const (
	DebianOpaqueDir  = "/etc/apt"
	DebianOpaqueFile = "berth-opaque"
	DebianTopFile    = "/etc/berth-top-layer" // added by the top layer
	// DebianMinUnpacked is the least unpacked size of the Debian image: the
	// pull benchmark's floor. Random (incompressible) data tops it up.
	DebianMinUnpacked = 210_000_000
)

// debianSplit assigns rootfs paths to the Debian image's layers, bottom
// first after the base layer (which takes everything no prefix matches):
// about the cut a Dockerfile's RUN steps would give.
var debianSplit = [][]string{
	{"etc", "var"},
	{"usr/lib"},
	{"usr/bin", "usr/sbin"},
	{"usr/share"},
}

// BusyboxImage returns the busybox test image: one gzip layer holding the
// busybox rootfs fixture, Cmd ["sh"].
func BusyboxImage() (*ImageLayout, error) {
	rootfs, err := BusyboxRootfs()
	if err != nil {
		return nil, err
	}
	return imageFixture("busybox", rootfs, func(w *layoutWriter) error {
		l, err := buildLayer(w.dir, func(tw *tar.Writer) error { return addTree(tw, rootfs, func(string) bool { return true }) })
		if err != nil {
			return err
		}
		w.add(l, "COPY busybox-rootfs /")
		return w.finish(ocispec.ImageConfig{Env: []string{defaultPath}, Cmd: []string{"sh"}})
	})
}

const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// DebianImage returns the multi-layer Debian image: the debootstrap rootfs
// fixture cut into 5 layers (see debianSplit), a layer of random data that
// brings the unpacked size to DebianMinUnpacked, and a top layer with
// whiteouts (see DebianDeleted). Cmd ["bash"].
func DebianImage() (*ImageLayout, error) {
	rootfs, err := DebianRootfs()
	if err != nil {
		return nil, err
	}
	for _, p := range append([]string{DebianOpaqueDir}, DebianDeleted...) {
		if _, err := os.Lstat(filepath.Join(rootfs, p)); err != nil {
			return nil, fmt.Errorf("debian image: the top layer deletes %s, which the rootfs lacks: %w", p, err)
		}
	}
	return imageFixture("debian", rootfs, func(w *layoutWriter) error {
		inGroup := func(rel string, g []string) bool {
			for _, p := range g {
				if rel == p || strings.HasPrefix(rel, p+"/") {
					return true
				}
			}
			return false
		}
		keeps := []func(string) bool{func(rel string) bool {
			for _, g := range debianSplit {
				if inGroup(rel, g) {
					return false
				}
			}
			return true
		}}
		for _, g := range debianSplit {
			keeps = append(keeps, func(rel string) bool { return inGroup(rel, g) })
		}
		// Compress the layers side by side: gzip is the slow part.
		type result struct {
			l   layer
			err error
		}
		res := make([]chan result, len(keeps))
		for i, keep := range keeps {
			res[i] = make(chan result, 1)
			go func() {
				l, err := buildLayer(w.dir, func(tw *tar.Writer) error { return addTree(tw, rootfs, keep) })
				res[i] <- result{l, err}
			}()
		}
		var errs []error
		for i := range res {
			r := <-res[i]
			errs = append(errs, r.err)
			w.add(r.l, fmt.Sprintf("COPY debian-rootfs layer %d /", i))
		}
		if err := errors.Join(errs...); err != nil {
			return err
		}
		if short := DebianMinUnpacked - w.unpacked; short > 0 {
			l, err := buildLayer(w.dir, func(tw *tar.Writer) error { return addRandom(tw, "opt/berth-bench", short) })
			if err != nil {
				return err
			}
			w.add(l, "RUN head -c N /dev/urandom > /opt/berth-bench/…")
		}
		l, err := buildLayer(w.dir, func(tw *tar.Writer) error { return addDebianTop(tw, rootfs) })
		if err != nil {
			return err
		}
		w.add(l, "RUN rm -rf /etc/issue.net /usr/share/doc /etc/apt/*")
		return w.finish(ocispec.ImageConfig{Env: []string{defaultPath}, Cmd: []string{"bash"}})
	})
}

// addDebianTop writes the top layer: whiteouts for DebianDeleted, an opaque
// DebianOpaqueDir holding only DebianOpaqueFile, and DebianTopFile.
func addDebianTop(tw *tar.Writer, rootfs string) error {
	written := map[string]bool{}
	var dir func(rel string) error
	dir = func(rel string) error { // rel and its parents, parents first
		if rel == "." || written[rel] {
			return nil
		}
		written[rel] = true
		if err := dir(filepath.Dir(rel)); err != nil {
			return err
		}
		return addEntry(tw, rootfs, rel, nil)
	}
	opq := strings.TrimPrefix(DebianOpaqueDir, "/")
	files := [][2]string{
		{opq + "/.wh..wh..opq", ""},
		{opq + "/" + DebianOpaqueFile, "opaque\n"},
		{strings.TrimPrefix(DebianTopFile, "/"), "top\n"},
	}
	for _, p := range DebianDeleted {
		rel := strings.TrimPrefix(p, "/")
		files = append(files, [2]string{filepath.Join(filepath.Dir(rel), ".wh."+filepath.Base(rel)), ""})
	}
	if err := dir(opq); err != nil {
		return err
	}
	for _, f := range files {
		if err := dir(filepath.Dir(f[0])); err != nil {
			return err
		}
		if err := tarFile(tw, f[0], 0o644, []byte(f[1])); err != nil {
			return err
		}
	}
	return nil
}

// addRandom writes n bytes of incompressible data as 8 MiB files under dir,
// from a fixed seed (the same bytes, so the same digest, on every build).
func addRandom(tw *tar.Writer, dir string, n int64) error {
	rng := rand.NewChaCha8([32]byte{'b', 'e', 'r', 't', 'h'})
	const chunk = 8 << 20
	buf := make([]byte, chunk)
	for i := 0; n > 0; i++ {
		size := min(n, chunk)
		_, _ = rng.Read(buf[:size]) // ChaCha8.Read never fails
		if err := tarFile(tw, fmt.Sprintf("%s/random-%03d.bin", dir, i), 0o644, buf[:size]); err != nil {
			return err
		}
		n -= size
	}
	return nil
}
