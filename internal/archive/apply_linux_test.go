package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/testutil"
)

// TestApplyHostile feeds layers that try to write outside the target. Each
// either fails with ErrInvalidArgument or lands inside dir; in every case
// the sentinel directory beside dir and /etc/passwd stay untouched.
func TestApplyHostile(t *testing.T) {
	testutil.RequiresRoot(t)
	// The sentinel's absolute path, used as a symlink target: outside the
	// root in the host's view, but a missing path inside the root.
	base := t.TempDir()
	sentinel := filepath.Join(base, "outside")

	tests := []struct {
		name    string
		entries []tent
		invalid bool                           // must fail with ErrInvalidArgument
		check   func(t *testing.T, dir string) // what must hold inside dir
	}{
		{name: "dotdot", entries: []tent{file("../outside/pwned", "x")}, invalid: true},
		{name: "dotdot after clean", entries: []tent{file("a/../../outside/pwned", "x")}, invalid: true},
		{name: "dotdot dir", entries: []tent{dir("../outside/d/")}, invalid: true},
		{
			name:    "absolute made relative",
			entries: []tent{file("/abs/file", "inside")},
			check:   wantFile("abs/file", "inside"),
		},
		{
			name:    "write through absolute symlink to the host",
			entries: []tent{symlink("a", sentinel), file("a/pwned", "x")},
			invalid: true,
		},
		{
			name:    "symlink to /etc then a/passwd stays inside",
			entries: []tent{dir("etc/"), symlink("a", "/etc"), file("a/passwd", "root::0:0::/:/bin/sh\n")},
			check:   wantFile("etc/passwd", "root::0:0::/:/bin/sh\n"),
		},
		{
			name:    "symlink dotdot chain resolves to the root",
			entries: []tent{symlink("up", "../../../../../.."), file("up/outside/pwned", "x")},
			check:   wantFile("outside/pwned", "x"),
		},
		{
			name:    "relative symlink to sibling",
			entries: []tent{symlink("l", "../outside"), file("l/pwned", "x")},
			invalid: true,
		},
		{
			name:    "nested symlinks out",
			entries: []tent{dir("d/"), symlink("d/l", "../../outside"), symlink("m", "d/l"), file("m/pwned", "x")},
			invalid: true,
		},
		{
			name:    "file replaces a symlink instead of following it",
			entries: []tent{symlink("f", sentinel+"/file"), file("f", "mine")},
			check:   wantFile("f", "mine"),
		},
		{name: "hardlink to /etc/passwd", entries: []tent{hardlink("pw", "/etc/passwd")}, invalid: true},
		{name: "hardlink to ../outside", entries: []tent{hardlink("h", "../outside/file")}, invalid: true},
		{
			name:    "hardlink through symlink",
			entries: []tent{symlink("s", sentinel), hardlink("h", "s/file")},
			invalid: true,
		},
		{
			name:    "hardlink to symlink links the symlink",
			entries: []tent{symlink("s", "/etc/passwd"), hardlink("h", "s")},
			check: func(t *testing.T, dir string) {
				if l, err := os.Readlink(filepath.Join(dir, "h")); err != nil || l != "/etc/passwd" {
					t.Errorf("h: readlink = %q, %v; want the symlink itself", l, err)
				}
			},
		},
		{name: "hardlink to missing", entries: []tent{hardlink("h", "nothing")}, invalid: true},
		{
			name: "device node is created inside",
			entries: []tent{dir("dev/"), {hdr: tar.Header{
				Typeflag: tar.TypeChar, Name: "dev/null", Mode: 0o666, Devmajor: 1, Devminor: 3,
			}}},
			check: func(t *testing.T, dir string) {
				var st unix.Stat_t
				if err := unix.Lstat(filepath.Join(dir, "dev/null"), &st); err != nil {
					t.Fatal(err)
				}
				if st.Mode&unix.S_IFMT != unix.S_IFCHR || unix.Major(st.Rdev) != 1 || unix.Minor(st.Rdev) != 3 {
					t.Errorf("dev/null: mode %o rdev %d:%d", st.Mode, unix.Major(st.Rdev), unix.Minor(st.Rdev))
				}
			},
		},
		{
			name: "device node over a symlink does not follow it",
			entries: []tent{symlink("n", sentinel+"/file"), {hdr: tar.Header{
				Typeflag: tar.TypeChar, Name: "n", Mode: 0o666, Devmajor: 1, Devminor: 3,
			}}},
		},
		{name: "parent is a file", entries: []tent{file("f", "x"), file("f/x", "y")}, invalid: true},
		{name: "whiteout of dotdot", entries: []tent{file("a/.wh...", "")}, invalid: true},
		{name: "whiteout escaping", entries: []tent{file("../outside/.wh.file", "")}, invalid: true},
		{
			name:    "whiteout through symlink stays inside",
			entries: []tent{symlink("s", sentinel), file("s/.wh.file", "")},
			invalid: true,
		},
		{name: "symlink loop", entries: []tent{symlink("loop", "loop"), file("loop/x", "")}, invalid: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.MkdirAll(sentinel, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(sentinel, "file"), []byte("original"), 0o644); err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(base, "root")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(dir) })
			before := hostState(t, sentinel)

			for _, wh := range []WhiteoutFormat{WhiteoutsApply, WhiteoutsOverlay} {
				_, err := Apply(context.Background(), dir, bytes.NewReader(makeTar(t, tc.entries...)), ApplyOptions{Whiteouts: wh})
				if tc.invalid {
					if !errdefs.IsInvalidArgument(err) {
						t.Fatalf("Apply = %v, want ErrInvalidArgument", err)
					}
				} else if err != nil {
					t.Fatalf("Apply: %v", err)
				}
				if after := hostState(t, sentinel); after != before {
					t.Fatalf("host changed:\nbefore %s\nafter  %s", before, after)
				}
				if tc.check != nil {
					tc.check(t, dir)
				}
			}
		})
	}
}

func wantFile(rel, content string) func(t *testing.T, dir string) {
	return func(t *testing.T, dir string) {
		t.Helper()
		fi, err := os.Lstat(filepath.Join(dir, rel))
		if err != nil {
			t.Fatal(err)
		}
		if !fi.Mode().IsRegular() {
			t.Fatalf("%s: mode %v, want a regular file", rel, fi.Mode())
		}
		if b, _ := os.ReadFile(filepath.Join(dir, rel)); string(b) != content {
			t.Errorf("%s = %q, want %q", rel, b, content)
		}
	}
}

// TestApplyMaxBytes: a gzip bomb (256 MiB of zeros, 250 KiB compressed)
// stops at MaxBytes with ErrInvalidArgument instead of filling the disk.
func TestApplyMaxBytes(t *testing.T) {
	testutil.RequiresRoot(t)
	var blob bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&blob, gzip.BestSpeed)
	tw := tar.NewWriter(zw)
	const size = 256 << 20
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "zeros", Mode: 0o644, Size: size}); err != nil {
		t.Fatal(err)
	}
	zero := make([]byte, 1<<20)
	for i := 0; i < size/len(zero); i++ {
		tw.Write(zero)
	}
	tw.Close()
	zw.Close()

	tests := []struct {
		name    string
		max     int64
		wantErr bool
	}{
		{"bomb", 4 << 20, true},
		{"exactly enough", size + 2048, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, c, err := Decompress(bytes.NewReader(blob.Bytes()))
			if err != nil || c != Gzip {
				t.Fatalf("Decompress = %v, %v", c, err)
			}
			defer r.Close()
			dir := t.TempDir()
			n, err := Apply(context.Background(), dir, r, ApplyOptions{MaxBytes: tc.max})
			if !tc.wantErr {
				if err != nil {
					t.Fatalf("Apply: %v", err)
				}
				return
			}
			if !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "exceeds") {
				t.Fatalf("Apply = %v, want a size error", err)
			}
			if n > tc.max+1 {
				t.Errorf("read %d bytes past a limit of %d", n, tc.max)
			}
			var st unix.Stat_t
			if unix.Stat(filepath.Join(dir, "zeros"), &st) == nil && st.Blocks*512 > 2*tc.max {
				t.Errorf("wrote %d bytes despite the limit", st.Blocks*512)
			}
		})
	}
}

func TestApplyCancel(t *testing.T) {
	testutil.RequiresRoot(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Apply(ctx, t.TempDir(), bytes.NewReader(makeTar(t, file("a", "b"))), ApplyOptions{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Apply = %v, want context.Canceled", err)
	}
}

// TestApplyReplace: an entry replaces what its path holds, as in Docker,
// except that a directory over a directory keeps the content.
func TestApplyReplace(t *testing.T) {
	testutil.RequiresRoot(t)
	tests := []struct {
		name   string
		first  []tent
		second []tent
		want   map[string]string // rel -> "dir", "link:TARGET", or file content
		gone   []string
	}{
		{
			name:   "file over directory tree",
			first:  []tent{dir("x/"), file("x/inner", "i")},
			second: []tent{file("x", "file now")},
			want:   map[string]string{"x": "file now"},
			gone:   []string{"x/inner"},
		},
		{
			name:   "directory over directory keeps content",
			first:  []tent{dir("x/"), file("x/inner", "i")},
			second: []tent{{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "x/", Mode: 0o700}}},
			want:   map[string]string{"x": "dir", "x/inner": "i"},
		},
		{
			name:   "directory over file",
			first:  []tent{file("x", "f")},
			second: []tent{dir("x/"), file("x/y", "y")},
			want:   map[string]string{"x": "dir", "x/y": "y"},
		},
		{
			name:   "symlink over file",
			first:  []tent{file("x", "f")},
			second: []tent{symlink("x", "/target")},
			want:   map[string]string{"x": "link:/target"},
		},
		{
			name:   "hardlink over file",
			first:  []tent{file("x", "old"), file("t", "target")},
			second: []tent{hardlink("x", "t")},
			want:   map[string]string{"x": "target", "t": "target"},
		},
		{
			name:   "file over symlink to a directory",
			first:  []tent{dir("d/"), file("d/keep", "k"), symlink("x", "d")},
			second: []tent{file("x", "plain")},
			want:   map[string]string{"x": "plain", "d/keep": "k"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			applyBytes(t, dir, makeTar(t, tc.first...), WhiteoutsApply)
			applyBytes(t, dir, makeTar(t, tc.second...), WhiteoutsApply)
			for rel, want := range tc.want {
				p := filepath.Join(dir, rel)
				fi, err := os.Lstat(p)
				if err != nil {
					t.Errorf("%s: %v", rel, err)
					continue
				}
				switch {
				case want == "dir":
					if !fi.IsDir() {
						t.Errorf("%s: %v, want a directory", rel, fi.Mode())
					}
				case strings.HasPrefix(want, "link:"):
					if l, _ := os.Readlink(p); l != strings.TrimPrefix(want, "link:") {
						t.Errorf("%s: link %q, want %s", rel, l, want)
					}
				default:
					if b, _ := os.ReadFile(p); !fi.Mode().IsRegular() || string(b) != want {
						t.Errorf("%s: %v %q, want file %q", rel, fi.Mode(), b, want)
					}
				}
			}
			for _, rel := range tc.gone {
				if _, err := os.Lstat(filepath.Join(dir, rel)); err == nil {
					t.Errorf("%s still exists", rel)
				}
			}
		})
	}
}

func TestSyncDir(t *testing.T) {
	tests := []struct {
		name    string
		dir     string
		wantErr bool
	}{
		{"directory", t.TempDir(), false},
		{"missing", filepath.Join(t.TempDir(), "nope"), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := SyncDir(tc.dir)
			if (err != nil) != tc.wantErr {
				t.Fatalf("SyncDir(%s) = %v, want error %v", tc.dir, err, tc.wantErr)
			}
			if tc.wantErr && !errors.Is(err, os.ErrNotExist) {
				t.Errorf("SyncDir error %v does not match os.ErrNotExist", err)
			}
		})
	}
}
