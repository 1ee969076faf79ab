package archive

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func dirFlags(t *testing.T, dir string) (uint32, error) {
	t.Helper()
	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return unix.IoctlGetUint32(int(f.Fd()), unix.FS_IOC_GETFLAGS)
}

// TestApplyMarksHierarchyTop checks that a layer directory is marked as
// the top of a directory hierarchy (chattr +T) where the filesystem keeps
// that flag (ext4), and that Apply works unchanged where it does not.
func TestApplyMarksHierarchyTop(t *testing.T) {
	base := t.TempDir()
	probe := filepath.Join(base, "probe")
	if err := os.Mkdir(probe, 0o755); err != nil {
		t.Fatal(err)
	}
	markHierarchyTop(probe)
	supported := false
	if fl, err := dirFlags(t, probe); err == nil && fl&fsTopdirFl != 0 {
		supported = true
	}

	target := filepath.Join(base, "layer")
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	layer := makeTar(t, dir("usr"), file("usr/a", "a"))
	if _, err := Apply(context.Background(), target, bytes.NewReader(layer), ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	wantFile("usr/a", "a")(t, target)
	if !supported {
		t.Skipf("%s keeps no FS_TOPDIR_FL; Apply without it is checked above", base)
	}
	fl, err := dirFlags(t, target)
	if err != nil {
		t.Fatal(err)
	}
	if fl&fsTopdirFl == 0 {
		t.Errorf("layer directory flags %#x lack FS_TOPDIR_FL", fl)
	}
}
