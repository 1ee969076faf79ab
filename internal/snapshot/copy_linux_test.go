package snapshot

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
	"golang.org/x/sys/unix"
)

// buildTree makes a source tree with everything copyTree must preserve.
func buildTree(t *testing.T, root string) {
	t.Helper()
	big := make([]byte, 3<<20+17)
	rand.Read(big)
	old := time.Date(2001, 2, 3, 4, 5, 6, 789, time.UTC)
	steps := []struct {
		name string
		do   func(p string) error
	}{
		{"file", func(p string) error { return os.WriteFile(p, []byte("hello"), 0o644) }},
		{"big", func(p string) error { return os.WriteFile(p, big, 0o600) }},
		{"empty", func(p string) error { return os.WriteFile(p, nil, 0o400) }},
		{"setuid", func(p string) error {
			if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
				return err
			}
			if err := os.Lchown(p, 1234, 5678); err != nil {
				return err
			}
			// chmod after chown: chown clears the setuid bit.
			if err := os.Chmod(p, 0o4755|os.ModeSetuid); err != nil {
				return err
			}
			return unix.Lsetxattr(p, "user.origin", []byte("layer-1"), 0)
		}},
		{"hardlink", func(p string) error { return os.Link(filepath.Join(root, "setuid"), p) }},
		{"symlink", func(p string) error {
			if err := os.Symlink("../../etc/passwd", p); err != nil {
				return err
			}
			if err := os.Lchown(p, 7, 8); err != nil {
				return err
			}
			ts := []unix.Timespec{unix.NsecToTimespec(old.UnixNano()), unix.NsecToTimespec(old.UnixNano())}
			return unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW)
		}},
		{"null", func(p string) error { return unix.Mknod(p, unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))) }},
		{"whiteout", func(p string) error { return unix.Mknod(p, unix.S_IFCHR, 0) }},
		{"fifo", func(p string) error { return unix.Mkfifo(p, 0o620) }},
		{"socket", func(p string) error { return unix.Mknod(p, unix.S_IFSOCK|0o755, 0) }},
		{"opaque", func(p string) error {
			if err := os.Mkdir(p, 0o755); err != nil {
				return err
			}
			return unix.Lsetxattr(p, "trusted.overlay.opaque", []byte("y"), 0)
		}},
		{"tmp", func(p string) error {
			if err := os.Mkdir(p, 0o755); err != nil {
				return err
			}
			return os.Chmod(p, 0o777|os.ModeSticky)
		}},
		{"a/b/c/deep", func(p string) error {
			if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
				return err
			}
			return os.WriteFile(p, []byte("deep"), 0o644)
		}},
		{"a/b/c/link-to-top", func(p string) error { return os.Link(filepath.Join(root, "file"), p) }},
		// A read-only directory: the copy must fill it before making it so.
		{"readonly", func(p string) error {
			if err := os.Mkdir(p, 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(p, "inside"), []byte("x"), 0o644); err != nil {
				return err
			}
			return os.Chmod(p, 0o555)
		}},
	}
	for _, s := range steps {
		if err := s.do(filepath.Join(root, s.name)); err != nil {
			t.Fatalf("build %s: %v", s.name, err)
		}
	}
	// Old times on the directories last, since adding entries bumps them.
	for _, d := range []string{"a/b/c", "a/b", "a", "tmp", "readonly", "."} {
		if err := os.Chtimes(filepath.Join(root, d), old, old); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(root, 0o711); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(root, 42, 43); err != nil {
		t.Fatal(err)
	}
}

type fileState struct {
	mode, uid, gid uint32
	rdev, size     uint64
	mtime          unix.Timespec
	nlink          uint64
	xattrs         map[string]string
	content        []byte
	link           string
}

func snapshotTree(t *testing.T, root string) (map[string]fileState, map[string]uint64) {
	t.Helper()
	states := map[string]fileState{}
	inodes := map[string]uint64{}
	err := filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		fs := fileState{mode: st.Mode, uid: st.Uid, gid: st.Gid, rdev: st.Rdev, size: uint64(st.Size),
			mtime: st.Mtim, nlink: uint64(st.Nlink), xattrs: map[string]string{}}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			fs.size, fs.nlink = 0, 0 // directory sizes are filesystem detail
		}
		names, _ := readXattr(func(b []byte) (int, error) { return unix.Llistxattr(p, b) })
		for _, n := range splitNul(names) {
			v, _ := readXattr(func(b []byte) (int, error) { return unix.Lgetxattr(p, n, b) })
			fs.xattrs[n] = string(v)
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			fs.content, err = os.ReadFile(p)
		case unix.S_IFLNK:
			fs.link, err = os.Readlink(p)
		}
		states[rel] = fs
		inodes[rel] = st.Ino
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return states, inodes
}

func TestCopyTreePreservesEverything(t *testing.T) {
	testutil.RequiresRoot(t)
	src, dst := filepath.Join(t.TempDir(), "src"), filepath.Join(t.TempDir(), "dst")
	for _, d := range []string{src, dst} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	buildTree(t, src)
	if err := copyTree(context.Background(), src, dst); err != nil {
		t.Fatal(err)
	}
	want, _ := snapshotTree(t, src)
	got, inodes := snapshotTree(t, dst)
	var names []string
	for n := range want {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		w, g := want[n], got[n]
		if _, ok := got[n]; !ok {
			t.Errorf("%s: missing in copy", n)
			continue
		}
		if w.mode != g.mode || w.uid != g.uid || w.gid != g.gid || w.rdev != g.rdev || w.size != g.size || w.nlink != g.nlink {
			t.Errorf("%s: copy has mode %o uid %d gid %d rdev %d size %d nlink %d, source %o %d %d %d %d %d",
				n, g.mode, g.uid, g.gid, g.rdev, g.size, g.nlink, w.mode, w.uid, w.gid, w.rdev, w.size, w.nlink)
		}
		if w.mtime != g.mtime {
			t.Errorf("%s: mtime %v, want %v", n, g.mtime, w.mtime)
		}
		if !bytes.Equal(w.content, g.content) || w.link != g.link {
			t.Errorf("%s: content or link target differs", n)
		}
		if len(w.xattrs) != len(g.xattrs) {
			t.Errorf("%s: xattrs %v, want %v", n, g.xattrs, w.xattrs)
		}
		for k, v := range w.xattrs {
			if g.xattrs[k] != v {
				t.Errorf("%s: xattr %s = %q, want %q", n, k, g.xattrs[k], v)
			}
		}
	}
	if len(got) != len(want) {
		t.Errorf("copy has %d entries, source %d", len(got), len(want))
	}
	for _, pair := range [][2]string{{"setuid", "hardlink"}, {"file", "a/b/c/link-to-top"}} {
		if inodes[pair[0]] != inodes[pair[1]] {
			t.Errorf("%s and %s are no longer hard links of one inode", pair[0], pair[1])
		}
	}
}

func TestCopyTreeHonoursContext(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	if err := os.MkdirAll(filepath.Join(src, "a", "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := copyTree(ctx, src, dst); err == nil {
		t.Fatal("copy with a cancelled context succeeded")
	}
}
