package testutil

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	specsgo "github.com/opencontainers/image-spec/specs-go"
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

// layer is a gzip layer blob written into a layout.
type layer struct {
	desc     ocispec.Descriptor
	diffID   digest.Digest
	unpacked int64 // uncompressed tar bytes
}

// buildLayer writes the tar that fill produces, gzip-compressed, into the
// layout's blobs, hashing both the compressed (digest) and uncompressed
// (DiffID) streams on the way.
func buildLayer(layoutDir string, fill func(*tar.Writer) error) (layer, error) {
	f, err := os.CreateTemp(filepath.Join(layoutDir, "blobs", "sha256"), ".layer.")
	if err != nil {
		return layer{}, err
	}
	defer func() {
		f.Close()
		os.Remove(f.Name()) // gone after the rename; removes a failed layer
	}()
	blob := &hashCounter{h: sha256.New()}
	gz := gzip.NewWriter(io.MultiWriter(f, blob))
	diff := &hashCounter{h: sha256.New()}
	tw := tar.NewWriter(io.MultiWriter(gz, diff))
	if err := fill(tw); err != nil {
		return layer{}, err
	}
	for _, c := range []io.Closer{tw, gz, f} {
		if err := c.Close(); err != nil {
			return layer{}, err
		}
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil { // CreateTemp made it 0600
		return layer{}, err
	}
	l := layer{
		desc: ocispec.Descriptor{
			MediaType: ocispec.MediaTypeImageLayerGzip,
			Digest:    digest.NewDigest(digest.SHA256, blob.h),
			Size:      blob.n,
		},
		diffID:   digest.NewDigest(digest.SHA256, diff.h),
		unpacked: diff.n,
	}
	return l, os.Rename(f.Name(), blobPath(layoutDir, l.desc.Digest))
}

type hashCounter struct {
	h hash.Hash
	n int64
}

func (c *hashCounter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return c.h.Write(p)
}

// addTree writes the entries of rootfs for which keep(rel) holds, each
// preceded by its parent directories (a layer must carry the directories it
// writes into, with their real owner and mode). Lexical order; /dev, /proc
// and /sys are kept empty, as images have them.
func addTree(tw *tar.Writer, rootfs string, keep func(rel string) bool) error {
	written := map[string]bool{}
	links := map[uint64]string{} // inode → first name, for hardlinks
	var ensure func(rel string) error
	ensure = func(rel string) error {
		if rel == "." || written[rel] {
			return nil
		}
		if err := ensure(filepath.Dir(rel)); err != nil {
			return err
		}
		written[rel] = true
		return addEntry(tw, rootfs, rel, links)
	}
	return filepath.WalkDir(rootfs, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(rootfs, path)
		if err != nil || rel == "." || rel == ".fixture-stamp" || d.Type()&fs.ModeSocket != 0 {
			return err
		}
		if dir := filepath.Dir(rel); dir == "dev" || dir == "proc" || dir == "sys" {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if !keep(rel) {
			return nil
		}
		return ensure(rel)
	})
}

// addEntry writes rootfs/rel's header (and content for a regular file). A
// file whose inode links already saw becomes a hardlink to that name.
func addEntry(tw *tar.Writer, rootfs, rel string, links map[uint64]string) error {
	path := filepath.Join(rootfs, rel)
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	var target string
	if fi.Mode()&fs.ModeSymlink != 0 {
		if target, err = os.Readlink(path); err != nil {
			return err
		}
	}
	hdr, err := tar.FileInfoHeader(fi, target)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	hdr.Name = filepath.ToSlash(rel)
	if fi.IsDir() {
		hdr.Name += "/"
	}
	// Host user names and access times would make the bytes host-dependent.
	hdr.Uname, hdr.Gname = "", ""
	hdr.ModTime = hdr.ModTime.Truncate(time.Second)
	hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && fi.Mode().IsRegular() && st.Nlink > 1 && links != nil {
		if first, ok := links[st.Ino]; ok {
			hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
			return tw.WriteHeader(hdr)
		}
		links[st.Ino] = hdr.Name
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(tw, f)
	return err
}

func tarFile(tw *tar.Writer, name string, mode int64, data []byte) error {
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), ModTime: imageCreated}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err := tw.Write(data)
	return err
}

// PushLayout copies the image of the OCI layout at layoutDir to the
// registry reference ref ("HOST:PORT/repo:tag", plain HTTP) with skopeo: a
// tool no one here wrote puts the image there, berth then pulls it.
func PushLayout(t testing.TB, layoutDir, ref string) {
	t.Helper()
	PushLayoutAs(t, layoutDir, ref, "", "")
}

// PushLayoutAs is PushLayout with registry credentials (none when user is "").
func PushLayoutAs(t testing.TB, layoutDir, ref, user, password string) {
	t.Helper()
	args := []string{"copy", "--quiet", "--dest-tls-verify=false"}
	if user != "" {
		args = append(args, "--dest-creds", user+":"+password)
	}
	args = append(args, "oci:"+layoutDir+":"+LayoutTag, "docker://"+ref)
	if out, err := exec.Command("skopeo", args...).CombinedOutput(); err != nil {
		t.Fatalf("skopeo %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// BerthEnv names the environment variable that points the tests at a
// prebuilt berth CLI.
const BerthEnv = "BERTH_BINARY"

// BerthBinary returns the berth CLI the tests drive: $BERTH_BINARY when set,
// else a fresh static build of ./cmd/berth in a temporary directory (never a
// stale bin/berth), with the berth-runtime it runs containers with beside
// it (where berth looks first): $BERTH_RUNTIME linked there when set, else a
// fresh build too. cleanup removes the directory.
func BerthBinary() (path string, cleanup func(), err error) {
	if p := os.Getenv(BerthEnv); p != "" {
		abs, err := exec.LookPath(p)
		if err != nil {
			return "", nil, fmt.Errorf("%s=%s: %w", BerthEnv, p, err)
		}
		abs, err = filepath.Abs(abs)
		return abs, func() {}, err
	}
	root, err := ModuleRoot()
	if err != nil {
		return "", nil, err
	}
	dir, err := os.MkdirTemp("", "berth-bin-")
	if err != nil {
		return "", nil, err
	}
	cleanup = func() { os.RemoveAll(dir) }
	defer func() {
		if err != nil {
			cleanup()
		}
	}()
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", nil, err
	}
	out := filepath.Join(dir, "berth")
	cmd := exec.Command("go", "build", "-trimpath", "-tags", "netgo osusergo", "-o", out, "./cmd/berth")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", nil, fmt.Errorf("go build ./cmd/berth: %w\n%s", err, strings.TrimSpace(string(b)))
	}
	rt := filepath.Join(dir, "berth-runtime")
	if p := os.Getenv(RuntimeEnv); p != "" {
		abs, err := exec.LookPath(p)
		if err == nil {
			abs, err = filepath.Abs(abs)
		}
		if err == nil {
			err = os.Symlink(abs, rt)
		}
		if err != nil {
			return "", nil, fmt.Errorf("%s=%s: %w", RuntimeEnv, p, err)
		}
	} else if err := BuildStatic(root, "./cmd/berth-runtime", rt); err != nil {
		return "", nil, err
	}
	return out, cleanup, nil
}

// HostileImage is a crafted image that berth must refuse, or (where the
// attack can be defused that way) contain inside the image's filesystem,
// without touching the host. Each is the busybox layer plus the attack.
type HostileImage struct {
	Name   string
	Attack string // what it tries, for test messages
	Layout *ImageLayout
	// Raw: the layout's blobs contradict its manifest (wrong digest,
	// truncated), so no registry takes a push: serve the layout as it is.
	Raw bool
	// MustReject: pulling (or running) must fail. Otherwise containment is
	// an acceptable answer too.
	MustReject bool
	// HostPaths must not exist on the host afterwards (escape targets).
	HostPaths []string
}

// GzipBombSize is the uncompressed size of the gzip-bomb layer's one file
// (its blob is a few MB). Tests set berth's unpack limit well below it.
const GzipBombSize = 2 << 30

// HostileImages builds (or finds cached) the hostile test images.
func HostileImages() ([]HostileImage, error) {
	rootfs, err := BusyboxRootfs()
	if err != nil {
		return nil, err
	}
	const climb = "../../../../../../../../../.."
	file := func(name, content string) func(*tar.Writer) error {
		return func(tw *tar.Writer) error { return tarFile(tw, name, 0o644, []byte(content)) }
	}
	link := func(typ byte, name, target string) func(*tar.Writer) error {
		return func(tw *tar.Writer) error {
			return tw.WriteHeader(&tar.Header{Typeflag: typ, Name: name, Linkname: target, Mode: 0o777, ModTime: imageCreated})
		}
	}
	images := []struct {
		HostileImage
		layers []func(*tar.Writer) error
		// tamper rewrites the last layer's blob (Raw images).
		tamper func(w *layoutWriter, last layer) error
	}{
		{HostileImage: HostileImage{Name: "traversal", Attack: "entry " + climb + "/tmp/berth-hostile-traversal",
			MustReject: true, HostPaths: []string{"/tmp/berth-hostile-traversal"}},
			layers: []func(*tar.Writer) error{file(climb+"/tmp/berth-hostile-traversal", "escaped\n")}},
		{HostileImage: HostileImage{Name: "symlink", Attack: "symlinks to /tmp (absolute and ../), then files written through them by the next layer",
			HostPaths: []string{"/tmp/berth-hostile-symlink-abs", "/tmp/berth-hostile-symlink-rel"}},
			layers: []func(*tar.Writer) error{
				func(tw *tar.Writer) error {
					return errors.Join(link(tar.TypeSymlink, "escape", "/tmp")(tw), link(tar.TypeSymlink, "up", climb+"/tmp")(tw))
				},
				func(tw *tar.Writer) error {
					return errors.Join(file("escape/berth-hostile-symlink-abs", "escaped\n")(tw), file("up/berth-hostile-symlink-rel", "escaped\n")(tw))
				},
			}},
		{HostileImage: HostileImage{Name: "hardlink", Attack: "hardlink to " + climb + "/etc/passwd", MustReject: true},
			layers: []func(*tar.Writer) error{link(tar.TypeLink, "passwd-link", climb+"/etc/passwd")}},
		{HostileImage: HostileImage{Name: "hardlink-abs", Attack: "hardlink to /etc/passwd (absolute: the image's own, in a lower layer)"},
			layers: []func(*tar.Writer) error{link(tar.TypeLink, "passwd-link", "/etc/passwd")}},
		{HostileImage: HostileImage{Name: "gzip-bomb", Attack: fmt.Sprintf("a %d-byte file of zeros in a small gzip layer", GzipBombSize), MustReject: true},
			layers: []func(*tar.Writer) error{func(tw *tar.Writer) error {
				if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "bomb", Mode: 0o644, Size: GzipBombSize, ModTime: imageCreated}); err != nil {
					return err
				}
				_, err := io.CopyN(tw, zeros{}, GzipBombSize)
				return err
			}}},
		{HostileImage: HostileImage{Name: "wrong-digest", Attack: "a layer blob whose bytes do not match its digest (same size)", Raw: true, MustReject: true},
			layers: []func(*tar.Writer) error{file("berth-wrong-digest", "original\n")},
			tamper: func(w *layoutWriter, last layer) error {
				other, err := buildLayer(w.dir, file("berth-wrong-digest", "tampered\n"))
				if err != nil {
					return err
				}
				if other.desc.Size != last.desc.Size {
					return fmt.Errorf("wrong-digest: tampered layer is %d bytes, original %d", other.desc.Size, last.desc.Size)
				}
				return os.Rename(blobPath(w.dir, other.desc.Digest), blobPath(w.dir, last.desc.Digest))
			}},
		{HostileImage: HostileImage{Name: "truncated", Attack: "a layer blob cut to half its size", Raw: true, MustReject: true},
			layers: []func(*tar.Writer) error{file("berth-truncated", strings.Repeat("truncated\n", 1000))},
			tamper: func(w *layoutWriter, last layer) error {
				return os.Truncate(blobPath(w.dir, last.desc.Digest), last.desc.Size/2)
			}},
	}
	var out []HostileImage
	for _, hi := range images {
		l, err := imageFixture("hostile-"+hi.Name, rootfs, func(w *layoutWriter) error {
			base, err := buildLayer(w.dir, func(tw *tar.Writer) error { return addTree(tw, rootfs, func(string) bool { return true }) })
			if err != nil {
				return err
			}
			w.add(base, "COPY busybox-rootfs /")
			var last layer
			for _, fill := range hi.layers {
				if last, err = buildLayer(w.dir, fill); err != nil {
					return err
				}
				w.add(last, "hostile: "+hi.Name)
			}
			if hi.tamper != nil {
				if err := hi.tamper(w, last); err != nil {
					return err
				}
			}
			return w.finish(ocispec.ImageConfig{Env: []string{defaultPath}, Cmd: []string{"sh"}})
		})
		if err != nil {
			return nil, err
		}
		hi.Layout = l
		out = append(out, hi.HostileImage)
	}
	return out, nil
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
