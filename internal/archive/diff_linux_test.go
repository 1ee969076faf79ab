package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/testutil"
)

// mountOverlay mounts overlayfs at merged and unmounts it when the test
// ends, failed or not. upper == "" gives a read-only stack of lowers.
func mountOverlay(t *testing.T, merged, upper, work string, lowers ...string) {
	t.Helper()
	opts := "lowerdir=" + strings.Join(lowers, ":")
	if upper != "" {
		opts += ",upperdir=" + upper + ",workdir=" + work
	}
	// Pin the features Diff relies on, whatever the module defaults are.
	opts += ",index=off,redirect_dir=off,metacopy=off"
	if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		t.Fatalf("mount overlay %s: %v", opts, err)
	}
	t.Cleanup(func() { unmount(t, merged) })
}

func unmount(t *testing.T, p string) {
	if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && err != unix.EINVAL {
		t.Errorf("unmount %s: %v", p, err)
	}
}

func mkdirs(t *testing.T, root string, names ...string) []string {
	t.Helper()
	var out []string
	for _, n := range names {
		p := filepath.Join(root, n)
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

func applyBytes(t *testing.T, dir string, b []byte, wh WhiteoutFormat) {
	t.Helper()
	if _, err := Apply(context.Background(), dir, bytes.NewReader(b), ApplyOptions{Whiteouts: wh}); err != nil {
		t.Fatalf("Apply into %s: %v", dir, err)
	}
}

// TestApplyWhiteouts applies the same layer both ways: deleting in place
// (native) and as an overlay lowerdir. The overlay mount of the layer over
// its parent must show exactly the tree the native apply produced.
func TestApplyWhiteouts(t *testing.T) {
	testutil.RequiresRoot(t)
	parent := makeTar(t,
		dir("a/"), file("a/gone", "g"), file("a/stay", "s"), dir("a/gonedir/"), file("a/gonedir/f", "f"),
		dir("d/"), file("d/old", "o"), dir("d/sub/"), file("d/sub/deep", "x"),
	)
	layer := makeTar(t,
		dir("a/"), file("a/.wh.gone", ""), file("a/.wh.gonedir", ""),
		file("a/mine", "m"), file("a/.wh.mine", ""), // same layer: not hidden
		// The opaque marker after the directory's entries: d/sub is this
		// layer's, but the parent's d/sub/deep is still hidden.
		dir("d/"), file("d/new", "n"), dir("d/sub/"), file("d/sub/mine", "m"), file("d/.wh..wh..opq", ""),
		file("a/.wh.nothing", ""), // whiteout of something no parent holds
	)
	root := t.TempDir()
	dirs := mkdirs(t, root, "native", "lower", "layer", "merged")
	native, lower, layerDir, merged := dirs[0], dirs[1], dirs[2], dirs[3]

	applyBytes(t, native, parent, WhiteoutsApply)
	applyBytes(t, native, layer, WhiteoutsApply)
	got := snapshotTree(t, native, true)
	for _, gone := range []string{"a/gone", "a/gonedir", "a/gonedir/f", "d/old", "d/sub/deep", "a/nothing"} {
		if _, ok := got[gone]; ok {
			t.Errorf("native: %s survived its whiteout", gone)
		}
	}
	for _, kept := range []string{"a/stay", "a/mine", "d/new", "d/sub", "d/sub/mine"} {
		if _, ok := got[kept]; !ok {
			t.Errorf("native: %s is missing", kept)
		}
	}

	applyBytes(t, lower, parent, WhiteoutsOverlay)
	applyBytes(t, layerDir, layer, WhiteoutsOverlay)
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(layerDir, "a/gone"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Errorf("overlay: a/gone is not a 0/0 character device (mode %o, rdev %d, %v)", st.Mode, st.Rdev, err)
	}
	if v, err := getXattr(filepath.Join(layerDir, "d"), "trusted.overlay.opaque"); err != nil || string(v) != "y" {
		t.Errorf("overlay: d has opaque=%q, %v; want y", v, err)
	}
	mountOverlay(t, merged, "", "", layerDir, lower)
	compareTrees(t, got, snapshotTree(t, merged, true))
}

// TestDiffOverlay makes changes through a real overlay mount (a delete, an
// opaque directory, copy-ups, new hardlinks, symlinks, xattrs, a fifo),
// diffs the upper directory, applies the diff natively onto a copy of the
// lower, and expects exactly what the mount showed.
func TestDiffOverlay(t *testing.T) {
	testutil.RequiresRoot(t)
	root := t.TempDir()
	dirs := mkdirs(t, root, "lower", "upper", "work", "merged", "applied")
	lower, upper, work, merged, applied := dirs[0], dirs[1], dirs[2], dirs[3], dirs[4]
	buildTree(t, lower)
	mountOverlay(t, merged, upper, work, lower)

	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	m := func(rel string) string { return filepath.Join(merged, rel) }
	must(os.Remove(m("srv/owned")))     // whiteout
	must(os.RemoveAll(m("usr/bin")))    // whiteouts…
	must(os.Mkdir(m("usr/bin"), 0o750)) // …then an opaque dir
	must(os.WriteFile(m("usr/bin/new"), []byte("new"), 0o755))
	must(os.WriteFile(m("srv/emptyfile"), []byte("now with content"), 0o600)) // copy-up
	must(os.Lchown(m("srv/null"), 7, 8))                                      // device copy-up
	must(os.MkdirAll(m("newdir/sub"), 0o755))
	must(os.WriteFile(m("newdir/f1"), []byte("linked"), 0o644))
	must(os.Link(m("newdir/f1"), m("newdir/f2")))
	must(os.Symlink("/srv/abs-link", m("newdir/sym")))
	must(unix.Lsetxattr(m("newdir/f1"), "user.tag", []byte("v"), 0))
	must(unix.Mkfifo(m("newdir/fifo"), 0o600))
	must(os.WriteFile(m("ephemeral"), nil, 0o644)) // created and deleted: no trace
	must(os.Remove(m("ephemeral")))
	want := snapshotTree(t, merged, true)
	unmount(t, merged)

	var layer bytes.Buffer
	if err := Diff(context.Background(), &layer, upper, []string{lower}); err != nil {
		t.Fatalf("Diff: %v", err)
	}
	entries := tarEntries(t, layer.Bytes())
	for name, typ := range map[string]byte{
		"srv/.wh.owned":        tar.TypeReg,
		"usr/bin/":             tar.TypeDir,
		"usr/bin/.wh..wh..opq": tar.TypeReg,
		"newdir/f1":            tar.TypeReg,
		"newdir/f2":            tar.TypeLink,
		"newdir/fifo":          tar.TypeFifo,
		"srv/null":             tar.TypeChar,
		"srv/emptyfile":        tar.TypeReg,
	} {
		if got, ok := entries[name]; !ok || got != typ {
			t.Errorf("diff entry %s: type %q (present %v), want %q", name, got, ok, typ)
		}
	}
	for _, absent := range []string{"ephemeral", ".wh.ephemeral", "srv/owned", "usr/bin/su"} {
		if _, ok := entries[absent]; ok {
			t.Errorf("diff holds %s", absent)
		}
	}

	var again bytes.Buffer
	if err := Diff(context.Background(), &again, upper, []string{lower}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.Bytes(), layer.Bytes()) {
		t.Error("two Diff runs of one upper differ")
	}

	var base bytes.Buffer
	if err := Tar(context.Background(), &base, lower, TarOptions{}); err != nil {
		t.Fatal(err)
	}
	applyBytes(t, applied, base.Bytes(), WhiteoutsApply)
	applyBytes(t, applied, layer.Bytes(), WhiteoutsApply)
	compareTrees(t, want, snapshotTree(t, applied, true))
}

// tarEntries lists a tarball's names with their types.
func tarEntries(t *testing.T, b []byte) map[string]byte {
	t.Helper()
	out := map[string]byte{}
	var names []string
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		out[h.Name] = h.Typeflag
		names = append(names, h.Name)
	}
	// Every entry's directory comes before it (when the layer has it).
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] {
			t.Errorf("entry %s twice", n)
		}
		seen[n] = true
		if d := path.Dir(strings.TrimSuffix(n, "/")); d != "." && !seen[d+"/"] {
			t.Errorf("entry %s before its directory", n)
		}
	}
	return out
}
