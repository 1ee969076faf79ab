//go:build linux

package image_test

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/internal/testutil"
)

// tool runs skopeo, umoci or podman so that it writes nothing on the host
// outside dir: in a private mount namespace with tmpfs over /var/lib, /run
// and /var/tmp (where they keep state their flags do not move: the blob
// info cache, /run/libpod, copy temp files); podman also gets its own
// --root/--tmpdir, a --runroot on that private /run and the vfs driver. The tmpfs mounts vanish
// with the process.
func tool(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Fatalf("%s not installed (make deps)", name)
	}
	if name == "podman" {
		args = append([]string{
			"--root", filepath.Join(dir, "root"), "--runroot", "/run/podman-test", // on the private tmpfs: podman wants < 50 characters
			"--tmpdir", filepath.Join(dir, "tmp"), "--storage-driver", "vfs", "--events-backend", "none",
		}, args...)
	}
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o700); err != nil {
		t.Fatal(err)
	}
	script := `mount -t tmpfs tmpfs /var/lib && mount -t tmpfs tmpfs /run && mount -t tmpfs tmpfs /var/tmp && exec "$@"`
	cmd := exec.Command("unshare", append([]string{"--mount", "--propagation", "private", "--", "sh", "-c", script, "sh", name}, args...)...)
	cmd.Env = append(os.Environ(), "TMPDIR="+filepath.Join(dir, "tmp"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// TestPushInterop: an image pushed by berth is read by `skopeo inspect`,
// copied by skopeo into an OCI layout, and unpacked by umoci into the same
// file tree that `berth export` gives for a container of that image.
func TestPushInterop(t *testing.T) {
	b := newBerth(t)
	deb := debian(t)
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{Auth: "none"})
	src := reg.Host + "/library/debian:src"
	testutil.PushLayout(t, deb.Dir, src)
	b.ok("pull", "-q", src)

	pushed := reg.Host + "/berth/debian:pushed"
	b.ok("tag", src, pushed)
	b.ok("push", pushed)
	// Again, to another repository: the registry has every blob (mountable
	// from berth/debian); the push must still succeed and change nothing.
	again := reg.Host + "/berth/copy:v1"
	b.ok("tag", src, again)
	b.ok("push", again)

	work := t.TempDir()
	var info struct {
		Digest       digest.Digest
		Layers       []digest.Digest
		Architecture string
		Os           string
	}
	for _, ref := range []string{pushed, again} {
		out := tool(t, work, "skopeo", "inspect", "--tls-verify=false", "docker://"+ref)
		if err := json.Unmarshal([]byte(out), &info); err != nil {
			t.Fatalf("skopeo inspect: %v\n%s", err, out)
		}
		if want := layerDigests(deb); !slices.Equal(info.Layers, want) {
			t.Errorf("skopeo inspect %s: layers %v, want %v", ref, info.Layers, want)
		}
		if info.Os != "linux" || info.Architecture != deb.Config.Architecture {
			t.Errorf("skopeo inspect %s: %s/%s", ref, info.Os, info.Architecture)
		}
	}

	layout := filepath.Join(work, "layout")
	tool(t, work, "skopeo", "copy", "--quiet", "--src-tls-verify=false", "docker://"+pushed, "oci:"+layout+":pushed")
	bundle := filepath.Join(work, "bundle")
	tool(t, work, "umoci", "unpack", "--image", layout+":pushed", bundle)
	umociTree := dirTree(t, filepath.Join(bundle, "rootfs"))

	b.ok("create", "--name", "to-export", pushed, "true")
	exported := filepath.Join(work, "export.tar")
	b.ok("export", "-o", exported, "to-export")
	berthTree := tarTree(t, exported)
	b.ok("rm", "to-export")

	compareTrees(t, "umoci unpack", umociTree, "berth export", berthTree)
}

// fileInfo is what the tree comparison looks at.
type fileInfo struct {
	Type     byte // tar type flag
	Mode     int64
	UID, GID int
	Size     int64 // regular files
	Link     string
}

func (f fileInfo) String() string {
	return fmt.Sprintf("type %c mode %04o owner %d:%d size %d link %q", f.Type, f.Mode, f.UID, f.GID, f.Size, f.Link)
}

func layerDigests(l *testutil.ImageLayout) []digest.Digest {
	var ds []digest.Digest
	for _, d := range l.Layers {
		ds = append(ds, d.Digest)
	}
	return ds
}

func dirTree(t *testing.T, root string) map[string]fileInfo {
	t.Helper()
	tree := map[string]fileInfo{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		rel, _ := filepath.Rel(root, p)
		f := fileInfo{Mode: int64(fi.Mode().Perm()), UID: int(st.Uid), GID: int(st.Gid)}
		if fi.Mode()&fs.ModeSetuid != 0 {
			f.Mode |= 0o4000
		}
		if fi.Mode()&fs.ModeSetgid != 0 {
			f.Mode |= 0o2000
		}
		if fi.Mode()&fs.ModeSticky != 0 {
			f.Mode |= 0o1000
		}
		switch {
		case fi.Mode().IsRegular():
			f.Type, f.Size = tar.TypeReg, fi.Size()
		case fi.IsDir():
			f.Type = tar.TypeDir
		case fi.Mode()&fs.ModeSymlink != 0:
			f.Type = tar.TypeSymlink
			f.Link, _ = os.Readlink(p)
		case fi.Mode()&fs.ModeCharDevice != 0:
			f.Type = tar.TypeChar
		case fi.Mode()&fs.ModeDevice != 0:
			f.Type = tar.TypeBlock
		case fi.Mode()&fs.ModeNamedPipe != 0:
			f.Type = tar.TypeFifo
		}
		tree[rel] = f
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

// tarTree reads an exported tar. Hardlinks count as the regular files they
// are on disk.
func tarTree(t *testing.T, path string) map[string]fileInfo {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tree := map[string]fileInfo{}
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		name := strings.TrimSuffix(strings.TrimPrefix(filepath.Clean("/"+hdr.Name), "/"), "/")
		if name == "" {
			continue
		}
		fi := fileInfo{Type: hdr.Typeflag, Mode: hdr.Mode & 0o7777, UID: hdr.Uid, GID: hdr.Gid, Size: hdr.Size, Link: hdr.Linkname}
		switch hdr.Typeflag {
		case tar.TypeLink:
			target := strings.TrimSuffix(strings.TrimPrefix(filepath.Clean("/"+hdr.Linkname), "/"), "/")
			fi = tree[target]
		case tar.TypeRegA:
			fi.Type = tar.TypeReg
		case tar.TypeReg:
		default:
			fi.Size = 0
		}
		if fi.Type != tar.TypeSymlink {
			fi.Link = ""
		}
		tree[name] = fi
	}
	return tree
}

// containerOnly are paths a container runtime may add to (or leave in) a
// container's filesystem as mount points: Docker's export has them too.
func containerOnly(p string) bool {
	switch p {
	case ".dockerenv", ".berthenv", "etc/hostname", "etc/hosts", "etc/resolv.conf", "etc/mtab":
		return true
	}
	for _, dir := range []string{"dev", "proc", "sys", "run"} {
		if p == dir || strings.HasPrefix(p, dir+"/") {
			return true
		}
	}
	return false
}

func compareTrees(t *testing.T, aName string, a map[string]fileInfo, bName string, b map[string]fileInfo) {
	t.Helper()
	var diffs []string
	for p, fa := range a {
		if containerOnly(p) {
			continue
		}
		fb, ok := b[p]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("%s: only in %s (%s)", p, aName, fa))
		case fa != fb:
			diffs = append(diffs, fmt.Sprintf("%s: %s has %s, %s has %s", p, aName, fa, bName, fb))
		}
	}
	for p, fb := range b {
		if _, ok := a[p]; !ok && !containerOnly(p) {
			diffs = append(diffs, fmt.Sprintf("%s: only in %s (%s)", p, bName, fb))
		}
	}
	slices.Sort(diffs)
	if len(diffs) > 0 {
		if len(diffs) > 40 {
			diffs = append(diffs[:40], fmt.Sprintf("… and %d more", len(diffs)-40))
		}
		t.Errorf("%s and %s differ (%d paths compared):\n%s", aName, bName, len(a), strings.Join(diffs, "\n"))
	}
	if len(a) < 1000 {
		t.Errorf("%s has only %d paths: not the Debian image", aName, len(a))
	}
}

// TestSaveLoadPodman: `berth save` output (docker-archive and OCI) loads in
// podman, and podman's saves load in berth and run.
func TestSaveLoadPodman(t *testing.T) {
	b := newBerth(t)
	bb := busybox(t)
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{Auth: "none"})
	ref := reg.Host + "/busybox:saved"
	testutil.PushLayout(t, bb.Dir, ref)
	b.ok("pull", "-q", ref)
	var diffIDs []string
	for _, d := range bb.Config.RootFS.DiffIDs {
		diffIDs = append(diffIDs, d.String())
	}

	for _, format := range []string{"docker", "oci"} {
		t.Run("podman loads berth save --format "+format, func(t *testing.T) {
			b := b.with(t)
			work := t.TempDir()
			archive := filepath.Join(work, "saved.tar")
			b.ok("save", "--format", format, "-o", archive, ref)
			tool(t, work, "podman", "load", "-i", archive)
			if id := tool(t, work, "podman", "image", "inspect", "--format", "{{.Id}}", ref); id != bb.ID().Encoded() {
				t.Errorf("podman sees image %s as %s, want %s", ref, id, bb.ID().Encoded())
			}
			if got := tool(t, work, "podman", "image", "inspect", "--format", "{{json .RootFS.Layers}}", ref); got != mustJSON(t, diffIDs) {
				t.Errorf("podman layers %s, want %s", got, mustJSON(t, diffIDs))
			}
		})
	}

	for _, format := range []string{"docker-archive", "oci-archive"} {
		t.Run("berth loads podman save --format "+format, func(t *testing.T) {
			b := b.with(t)
			work := t.TempDir()
			name := "localhost/from-podman:" + strings.TrimSuffix(format, "-archive")
			tool(t, work, "podman", "pull", "-q", "--tls-verify=false", ref)
			tool(t, work, "podman", "tag", ref, name)
			archive := filepath.Join(work, "podman.tar")
			tool(t, work, "podman", "save", "--format", format, "-o", archive, name)
			out := b.ok("load", "-i", archive)
			if !strings.Contains(out, "Loaded image") {
				t.Errorf("load printed %q", out)
			}
			var loaded string
			for _, l := range lines(b.ok("images", "--format", "{{.Repository}}:{{.Tag}}")) {
				if strings.Contains(l, "from-podman") {
					loaded = l
				}
			}
			if loaded == "" {
				t.Fatalf("no from-podman image after load:\n%s", b.ok("images"))
			}
			if got := b.ok("run", "--rm", loaded, "echo", "loaded"); got != "loaded\n" {
				t.Errorf("run of the loaded image printed %q", got)
			}
		})
	}

	// Through stdin, quietly, as `docker load` accepts.
	t.Run("load from stdin", func(t *testing.T) {
		b := b.with(t)
		archive := filepath.Join(t.TempDir(), "saved.tar")
		b.ok("save", "-o", archive, ref)
		b.ok("rmi", ref)
		data, err := os.ReadFile(archive)
		if err != nil {
			t.Fatal(err)
		}
		if r := b.runIn(string(data), "load", "-q"); r.code != 0 {
			t.Fatalf("%s", r)
		}
		b.ok("run", "--rm", ref, "true")
	})
}

func mustJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
