package imagearchive

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/testutil"
)

// isolatedTool runs podman or skopeo so that it writes nothing on the host
// outside dir: a private mount namespace puts tmpfs over /var/lib, /run and
// /var/tmp, where both keep state their flags do not move (the blob info
// cache under /var/lib/containers, /run/libpod, image copy temp files).
// The tmpfs mounts vanish with the process.
func isolatedTool(t *testing.T, dir, tool string, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		t.Skipf("%s not installed", tool)
	}
	testutil.RequiresRoot(t)
	if tool == "podman" {
		args = append([]string{
			"--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "run"),
			"--tmpdir", filepath.Join(dir, "tmp"), "--storage-driver", "vfs", "--events-backend", "none",
		}, args...)
	}
	script := `mount -t tmpfs tmpfs /var/lib && mount -t tmpfs tmpfs /run && mount -t tmpfs tmpfs /var/tmp && exec "$@"`
	cmd := exec.Command("unshare", append([]string{"--mount", "--propagation", "private", "--", "sh", "-c", script, "sh", tool}, args...)...)
	cmd.Env = append(os.Environ(), "TMPDIR="+filepath.Join(dir, "tmp"))
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o700); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", tool, strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

func saveFile(t *testing.T, cs *content.Store, entries []Entry, format Format) string {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "image.tar"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := Save(context.Background(), f, cs, entries, format); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}

func loadFile(t *testing.T, cs *content.Store, path string) []Entry {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	entries, err := Load(context.Background(), f, cs)
	if err != nil {
		t.Fatal(err)
	}
	return entries
}

// sameImage checks that got (in cs) is want's image (in wantCS): same
// config blob, hence same image ID and diff_ids.
func sameImage(t *testing.T, gotCS *content.Store, got Entry, wantCS *content.Store, want Entry, names ...string) {
	t.Helper()
	gm, _ := imageOf(t, gotCS, got)
	wm, _ := imageOf(t, wantCS, want)
	if gm.Config.Digest != wm.Config.Digest {
		t.Errorf("config %s, want %s", gm.Config.Digest, wm.Config.Digest)
	}
	if !reflect.DeepEqual(got.Names, names) {
		t.Errorf("names %q, want %q", got.Names, names)
	}
}

func TestPodmanInterop(t *testing.T) {
	pod := t.TempDir()
	podman := func(args ...string) string { return isolatedTool(t, pod, "podman", args...) }
	src := newStore(t)
	all := fixtureEntries(t, src)
	bb := all[0]
	bbID := func() string { m, _ := imageOf(t, src, bb); return m.Config.Digest.Encoded() }()

	t.Run("podman loads our docker-archive", func(t *testing.T) {
		one := bb
		one.Names = []string{"docker.io/library/busybox:latest"}
		podman("load", "-i", saveFile(t, src, []Entry{one}, DockerArchive))
		if id := podman("image", "inspect", "--format", "{{.Id}}", "docker.io/library/busybox:latest"); id != bbID {
			t.Errorf("podman image id %s, want %s", id, bbID)
		}
	})
	t.Run("podman loads our multi-image docker-archive", func(t *testing.T) {
		podman("load", "-i", saveFile(t, src, all, DockerArchive))
		ids := podman("images", "--no-trunc", "--format", "{{.ID}}")
		for i, e := range all {
			m, _ := imageOf(t, src, e)
			if !strings.Contains(ids, m.Config.Digest.Encoded()) {
				t.Errorf("image %d (%s) not in podman:\n%s", i, m.Config.Digest, ids)
			}
		}
	})
	t.Run("podman loads our OCI archive", func(t *testing.T) {
		b := all[1]
		podman("load", "-i", saveFile(t, src, []Entry{b}, OCIArchive))
		m, _ := imageOf(t, src, b)
		if id := podman("image", "inspect", "--format", "{{.Id}}", "localhost:5000/team/app:v2"); id != m.Config.Digest.Encoded() {
			t.Errorf("podman image id %s, want %s", id, m.Config.Digest.Encoded())
		}
	})
	for _, format := range []string{"docker-archive", "oci-archive"} {
		t.Run("we load podman's "+format, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "podman.tar")
			podman("save", "--format", format, "-o", out, "docker.io/library/busybox:latest")
			dst := newStore(t)
			got := loadFile(t, dst, out)
			if len(got) != 1 {
				t.Fatalf("entries %+v", got)
			}
			sameImage(t, dst, got[0], src, bb, "docker.io/library/busybox:latest")
		})
	}
}

func TestSkopeoInterop(t *testing.T) {
	sk := t.TempDir()
	skopeo := func(args ...string) string {
		return isolatedTool(t, sk, "skopeo", append([]string{"--insecure-policy"}, args...)...)
	}
	src := newStore(t)
	all := fixtureEntries(t, src)

	t.Run("skopeo docker-archive from our OCI layout", func(t *testing.T) {
		layout := filepath.Join(t.TempDir(), "layout")
		if err := os.Mkdir(layout, 0o755); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("tar", "-xf", saveFile(t, src, all[1:2], OCIArchive), "-C", layout).CombinedOutput(); err != nil {
			t.Fatalf("untar: %v\n%s", err, out)
		}
		out := filepath.Join(t.TempDir(), "skopeo.tar")
		// ref.name holds the tag, as containerd writes it.
		skopeo("copy", "oci:"+layout+":v2", "docker-archive:"+out+":example.com/skopeo/img:3")
		dst := newStore(t)
		got := loadFile(t, dst, out)
		if len(got) != 1 {
			t.Fatalf("entries %+v", got)
		}
		sameImage(t, dst, got[0], src, all[1], "example.com/skopeo/img:3")
	})
	t.Run("skopeo reads our docker-archive", func(t *testing.T) {
		archive := saveFile(t, src, all[:1], DockerArchive)
		layout := filepath.Join(t.TempDir(), "layout")
		skopeo("copy", "docker-archive:"+archive, "oci:"+layout+":copied")
		inspect := skopeo("inspect", "--config", "oci:"+layout+":copied")
		if !strings.Contains(inspect, `"/bin/hello"`) {
			t.Errorf("config through skopeo lost CMD: %s", inspect)
		}
	})
}
