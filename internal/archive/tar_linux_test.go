package archive

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/testutil"
)

// buildTree makes a tree with every kind of entry and attribute a layer
// carries. Directory times are set last, as the content changes them.
func buildTree(t *testing.T, root string) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	p := func(rel string) string { return filepath.Join(root, rel) }
	must(os.MkdirAll(p("usr/bin"), 0o755))
	must(os.MkdirAll(p("tmp"), 0o755))
	must(os.MkdirAll(p("srv/shared"), 0o755))
	must(os.MkdirAll(p("empty"), 0o700))
	must(os.WriteFile(p("usr/bin/su"), bytes.Repeat([]byte("su"), 5000), 0o755))
	must(os.WriteFile(p("usr/bin/ping"), []byte("ping"), 0o755))
	must(os.WriteFile(p("usr/bin/big"), bytes.Repeat([]byte("0123456789abcdef"), 300000), 0o644))
	must(os.WriteFile(p("srv/owned"), []byte("owned"), 0o640))
	must(os.WriteFile(p("srv/emptyfile"), nil, 0o600))
	must(os.Link(p("usr/bin/su"), p("usr/bin/su-link")))
	must(os.Link(p("usr/bin/su"), p("srv/su-too")))
	must(os.Symlink("/usr/bin/su", p("srv/abs-link")))
	must(os.Symlink("../usr/bin/ping", p("srv/rel-link")))
	must(os.Symlink("dangling", p("srv/dangling")))
	must(unix.Mknod(p("srv/null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	must(unix.Mknod(p("srv/loop9"), unix.S_IFBLK|0o660, int(unix.Mkdev(7, 9))))
	must(unix.Mkfifo(p("srv/fifo"), 0o620))

	must(os.Lchown(p("srv/owned"), 1234, 5678))
	must(os.Lchown(p("srv/abs-link"), 42, 43))
	must(os.Lchown(p("srv/shared"), 1000, 2000))
	// unix.Chmod: os.Chmod ignores raw 0o4000-style bits.
	must(unix.Chmod(p("usr/bin/su"), 0o4755))
	must(unix.Chmod(p("srv/shared"), 0o2775))
	must(unix.Chmod(p("tmp"), 0o1777))
	must(unix.Lsetxattr(p("usr/bin/big"), "user.origin", []byte("test"), 0))
	must(unix.Lsetxattr(p("srv/shared"), "trusted.note", []byte("dir xattr"), 0))
	// A file capability (VFS_CAP_REVISION_2, cap_net_raw effective): it
	// must survive the chown that Apply does before setting xattrs.
	capNetRaw := []byte{0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	must(unix.Lsetxattr(p("usr/bin/ping"), "security.capability", capNetRaw, 0))

	mt := time.Date(2021, 3, 4, 5, 6, 7, 123456789, time.UTC)
	i := 0
	filepath.Walk(root, func(path string, _ os.FileInfo, err error) error {
		if err == nil && path != root {
			i++
			ts := []unix.Timespec{unix.NsecToTimespec(mt.UnixNano()), unix.NsecToTimespec(mt.Add(time.Duration(i) * time.Hour).UnixNano())}
			must(unix.UtimesNanoAt(unix.AT_FDCWD, path, ts, unix.AT_SYMLINK_NOFOLLOW))
		}
		return nil
	})
}

// TestTarApplyRoundTrip: Tar then Apply reproduces the tree exactly:
// modes with setuid/setgid/sticky, owners, nanosecond mtimes (directories
// included), xattrs and file capabilities, hardlinks, symlinks, devices
// and fifos.
func TestTarApplyRoundTrip(t *testing.T) {
	testutil.RequiresRoot(t)
	src, dst := t.TempDir(), t.TempDir()
	buildTree(t, src)

	var tarball bytes.Buffer
	if err := Tar(context.Background(), &tarball, src, TarOptions{}); err != nil {
		t.Fatalf("Tar: %v", err)
	}
	n, err := Apply(context.Background(), dst, bytes.NewReader(tarball.Bytes()), ApplyOptions{})
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if n != int64(tarball.Len()) {
		t.Errorf("Apply read %d bytes of %d", n, tarball.Len())
	}
	compareTrees(t, snapshotTree(t, src, true), snapshotTree(t, dst, true))

	// Deterministic: the same tree gives the same bytes.
	var again bytes.Buffer
	if err := Tar(context.Background(), &again, src, TarOptions{}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.Bytes(), tarball.Bytes()) {
		t.Error("two Tar runs of one tree differ")
	}
}

func TestTarPrefix(t *testing.T) {
	testutil.RequiresRoot(t)
	src := t.TempDir()
	buildTree(t, src)
	tests := []struct {
		name   string
		path   string
		prefix string
		want   string // a path that must exist after Apply
	}{
		{"directory under a prefix", src, "copy", "copy/usr/bin/su"},
		{"single file", filepath.Join(src, "srv/owned"), "", "owned"},
		{"single file renamed", filepath.Join(src, "srv/owned"), "renamed", "renamed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := Tar(context.Background(), &buf, tc.path, TarOptions{Prefix: tc.prefix}); err != nil {
				t.Fatalf("Tar: %v", err)
			}
			dst := t.TempDir()
			if _, err := Apply(context.Background(), dst, &buf, ApplyOptions{}); err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if _, err := os.Lstat(filepath.Join(dst, tc.want)); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestRoundTripDebian runs the round trip on a real distribution tree (the
// Debian fixture): thousands of files, hardlinks and setuid binaries as
// debootstrap laid them out.
func TestRoundTripDebian(t *testing.T) {
	testutil.RequiresRoot(t)
	if testing.Short() {
		t.Skip("large fixture")
	}
	src, err := testutil.DebianRootfs()
	if err != nil {
		t.Skipf("debian fixture: %v", err)
	}
	dst := t.TempDir()
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	var copy bytes.Buffer
	go func() {
		err := Tar(context.Background(), io.MultiWriter(pw, &copy), src, TarOptions{})
		pw.CloseWithError(err)
		errc <- err
	}()
	if _, err := Apply(context.Background(), dst, pr, ApplyOptions{}); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	pr.Close()
	if err := <-errc; err != nil {
		t.Fatalf("Tar: %v", err)
	}
	want := snapshotTree(t, src, true)
	compareTrees(t, want, snapshotTree(t, dst, true))

	// Again over the result: every entry now replaces an existing one.
	if _, err := Apply(context.Background(), dst, &copy, ApplyOptions{}); err != nil {
		t.Fatalf("second Apply: %v", err)
	}
	compareTrees(t, want, snapshotTree(t, dst, true))
}

// TestApplyGNUTar applies archives written by GNU tar (the other common
// producer of layers): gnu and posix formats, with a sparse file, xattrs and
// the tree of buildTree.
func TestApplyGNUTar(t *testing.T) {
	testutil.RequiresRoot(t)
	if _, err := exec.LookPath("tar"); err != nil {
		t.Skip("GNU tar not installed")
	}
	src := t.TempDir()
	buildTree(t, src)
	// A sparse file: 64 MiB with two small extents of data.
	f, err := os.Create(filepath.Join(src, "sparse"))
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("head"), 0)
	f.WriteAt([]byte("tail"), 64<<20-4)
	f.Close()
	os.Chtimes(filepath.Join(src, "sparse"), time.Unix(1600000000, 0), time.Unix(1600000000, 0))
	os.Chtimes(src, time.Unix(1600000000, 0), time.Unix(1600000000, 0))

	for _, format := range []string{"gnu", "posix"} {
		t.Run(format, func(t *testing.T) {
			cmd := exec.Command("tar", "-c", "--format="+format, "--sparse", "--xattrs", "--xattrs-include=*", "--numeric-owner", "-C", src, ".")
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("tar: %v", err)
			}
			dst := t.TempDir()
			if _, err := Apply(context.Background(), dst, bytes.NewReader(out), ApplyOptions{}); err != nil {
				t.Fatalf("Apply: %v", err)
			}
			want, got := snapshotTree(t, src, true), snapshotTree(t, dst, true)
			if format == "gnu" {
				// The gnu format has whole-second times and no xattrs.
				for _, m := range []map[string]node{want, got} {
					for k, n := range m {
						n.Mtime -= n.Mtime % 1e9
						n.Xattrs = ""
						m[k] = n
					}
				}
			}
			compareTrees(t, want, got)
		})
	}
}
