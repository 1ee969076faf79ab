package testutil

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// skopeoInspect reads the layout's image with skopeo (a reader no one here
// wrote) and returns its layer digests.
func skopeoInspect(t *testing.T, l *ImageLayout) []digest.Digest {
	t.Helper()
	out, err := exec.Command("skopeo", "inspect", l.OCIRef()).Output()
	if err != nil {
		t.Fatalf("skopeo inspect %s: %v %s", l.OCIRef(), err, stderrOf(err))
	}
	var v struct{ Layers []digest.Digest }
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatal(err)
	}
	return v.Layers
}

func stderrOf(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(ee.Stderr)
	}
	return ""
}

func layerDigests(l *ImageLayout) []digest.Digest {
	var ds []digest.Digest
	for _, d := range l.Layers {
		ds = append(ds, d.Digest)
	}
	return ds
}

// layerNames lists the entry names of a gzip layer blob, checking that the
// uncompressed stream hashes to diffID.
func layerNames(t *testing.T, l *ImageLayout, i int) []string {
	t.Helper()
	f, err := os.Open(blobPath(l.Dir, l.Layers[i].Digest))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	tr := tar.NewReader(io.TeeReader(gz, h))
	var names []string
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, hdr.Name)
	}
	_, _ = io.Copy(h, gz) // the tar's end-of-archive padding
	if got := digest.NewDigest(digest.SHA256, h); got != l.Config.RootFS.DiffIDs[i] {
		t.Errorf("layer %d: diffID %s, config says %s", i, got, l.Config.RootFS.DiffIDs[i])
	}
	return names
}

func TestBusyboxImage(t *testing.T) {
	l, err := BusyboxImage()
	if err != nil {
		t.Fatal(err)
	}
	if got := skopeoInspect(t, l); !slices.Equal(got, layerDigests(l)) || len(got) != 1 {
		t.Fatalf("skopeo sees layers %v, layout has %v", got, layerDigests(l))
	}
	if !slices.Equal(l.Config.Config.Cmd, []string{"sh"}) {
		t.Errorf("Cmd = %q", l.Config.Config.Cmd)
	}
	names := layerNames(t, l, 0)
	for _, want := range []string{"bin/", "bin/busybox", "bin/sh", "etc/passwd", "dev/", "tmp/"} {
		if !slices.Contains(names, want) {
			t.Errorf("layer lacks %s", want)
		}
	}
	// Deterministic: the same rootfs gives the same layer digest.
	rootfs, _ := BusyboxRootfs()
	again, err := buildLayer(l.Dir, func(tw *tar.Writer) error { return addTree(tw, rootfs, func(string) bool { return true }) })
	if err != nil {
		t.Fatal(err)
	}
	if again.desc.Digest != l.Layers[0].Digest {
		t.Errorf("rebuilt layer %s, cached %s: the build is not deterministic", again.desc.Digest, l.Layers[0].Digest)
	}
}

// TestDebianImage checks the Debian image with umoci, which applies the
// whiteouts as any OCI tool would.
func TestDebianImage(t *testing.T) {
	RequiresRoot(t) // debootstrap, and umoci keeps file owners only as root
	l, err := DebianImage()
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Layers) < 7 {
		t.Errorf("%d layers, want 5 rootfs layers + random data + whiteouts", len(l.Layers))
	}
	if l.UnpackedSize < 200_000_000 {
		t.Errorf("unpacked size %d, want ≥ 200 MB", l.UnpackedSize)
	}
	if got := skopeoInspect(t, l); !slices.Equal(got, layerDigests(l)) {
		t.Fatalf("skopeo sees layers %v, layout has %v", got, layerDigests(l))
	}
	top := layerNames(t, l, len(l.Layers)-1)
	for _, want := range []string{"etc/.wh.issue.net", "usr/share/.wh.doc", "etc/apt/.wh..wh..opq"} {
		if !slices.Contains(top, want) {
			t.Errorf("top layer lacks %s: %q", want, top)
		}
	}
	bundle := filepath.Join(t.TempDir(), "bundle")
	if out, err := exec.Command("umoci", "unpack", "--image", l.Dir+":"+LayoutTag, bundle).CombinedOutput(); err != nil {
		t.Fatalf("umoci unpack: %v\n%s", err, out)
	}
	rootfs := filepath.Join(bundle, "rootfs")
	for _, p := range DebianDeleted {
		if _, err := os.Lstat(filepath.Join(rootfs, p)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: deleted by the top layer, but umoci unpacked it (%v)", p, err)
		}
	}
	ents, err := os.ReadDir(filepath.Join(rootfs, DebianOpaqueDir))
	if err != nil || len(ents) != 1 || ents[0].Name() != DebianOpaqueFile {
		t.Errorf("%s after unpack: %v %v, want only %s", DebianOpaqueDir, ents, err, DebianOpaqueFile)
	}
	want, _ := os.ReadFile(filepath.Join(mustDebianRootfs(t), "etc/debian_version"))
	if got, err := os.ReadFile(filepath.Join(rootfs, "etc/debian_version")); err != nil || string(got) != string(want) {
		t.Errorf("/etc/debian_version = %q %v, want %q", got, err, want)
	}
}

func mustDebianRootfs(t *testing.T) string {
	r, err := DebianRootfs()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestHostileImages(t *testing.T) {
	his, err := HostileImages()
	if err != nil {
		t.Fatal(err)
	}
	for _, hi := range his {
		t.Run(hi.Name, func(t *testing.T) {
			last := hi.Layout.Layers[len(hi.Layout.Layers)-1]
			b, err := os.ReadFile(blobPath(hi.Layout.Dir, last.Digest))
			if err != nil {
				t.Fatal(err)
			}
			intact := digest.FromBytes(b) == last.Digest && int64(len(b)) == last.Size
			if intact == hi.Raw {
				t.Fatalf("last layer intact=%v, but Raw=%v", intact, hi.Raw)
			}
			if hi.Raw {
				return
			}
			names := strings.Join(layerNames(t, hi.Layout, len(hi.Layout.Layers)-1), " ")
			if !strings.Contains(names, "berth-hostile") && !strings.Contains(names, "passwd-link") && !strings.Contains(names, "bomb") {
				t.Errorf("attack layer holds %s", names)
			}
		})
	}
}
