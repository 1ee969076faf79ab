package snapshot

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/mountinfo"
	"github.com/berth-dev/berth/internal/testutil"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestLowerdirEscaping(t *testing.T) {
	tests := []struct {
		name string
		dirs []string
	}{
		{"plain", []string{"/a/fs", "/b/fs"}},
		{"one", []string{"/only"}},
		{"specials", []string{"/with:colon", `/back\slash`, "/com,ma", "/sp ace"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			joined := joinLowerdirs(tc.dirs)
			if got := splitLowerdirs(joined); !reflect.DeepEqual(got, tc.dirs) {
				t.Errorf("split(join(%q)) = %q (joined %q)", tc.dirs, got, joined)
			}
		})
	}
}

func TestParseMountOptions(t *testing.T) {
	tests := []struct {
		name        string
		opts        []string
		flags, prop uintptr
		data        string
	}{
		{"rbind rw", []string{"rbind", "rw"}, unix.MS_BIND | unix.MS_REC, 0, ""},
		{"ro wins over earlier rw", []string{"rw", "bind", "ro", "nosuid"}, unix.MS_BIND | unix.MS_RDONLY | unix.MS_NOSUID, 0, ""},
		{"data and propagation", []string{"nodev", "size=64k", "mode=755", "rprivate"}, unix.MS_NODEV, unix.MS_PRIVATE | unix.MS_REC, "size=64k,mode=755"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			flags, prop, data := parseMountOptions(tc.opts)
			if flags != tc.flags || prop != tc.prop || data != tc.data {
				t.Errorf("got %#x %#x %q, want %#x %#x %q", flags, prop, data, tc.flags, tc.prop, tc.data)
			}
		})
	}
}

func isMountPoint(t *testing.T, p string) bool {
	t.Helper()
	points, err := mountinfo.PointsUnder(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range points {
		if m == p {
			return true
		}
	}
	return false
}

// TestUnmountAllNestedStackedAndBusy: mounts below the target, two mounts
// stacked on it, and one kept busy by an open directory all go.
func TestUnmountAllNestedStackedAndBusy(t *testing.T) {
	testutil.RequiresRoot(t)
	dir := t.TempDir()
	target := filepath.Join(dir, "with space")
	src := filepath.Join(dir, "src")
	for _, d := range []string{target, src, filepath.Join(src, "sub")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = unix.Unmount(target, unix.MNT_DETACH); _ = unix.Unmount(target, unix.MNT_DETACH) })
	steps := []struct {
		m      specs.Mount
		target string
	}{
		{specs.Mount{Type: "tmpfs", Source: "tmpfs", Options: []string{"size=1m"}}, target},
		{specs.Mount{Type: "bind", Source: src, Options: []string{"rbind", "ro"}}, target},
		{specs.Mount{Type: "tmpfs", Source: "tmpfs", Options: []string{"size=1m", "nodev"}}, filepath.Join(target, "sub")},
	}
	for _, s := range steps {
		if err := MountAll([]specs.Mount{s.m}, s.target); err != nil {
			t.Fatalf("MountAll %+v: %v", s.m, err)
		}
	}
	if err := os.WriteFile(filepath.Join(target, "x"), nil, 0o644); !errors.Is(err, unix.EROFS) {
		t.Errorf("write into the read-only bind: %v, want EROFS", err)
	}
	busy, err := os.Open(filepath.Join(target, "sub"))
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	if err := UnmountAll(target); err != nil {
		t.Fatal(err)
	}
	if points, _ := mountinfo.PointsUnder(target); len(points) != 0 {
		t.Errorf("still mounted after UnmountAll: %v", points)
	}
	if err := UnmountAll(target); err != nil {
		t.Errorf("UnmountAll on an unmounted dir: %v", err)
	}
}

// TestOverlayMountErrorExplains: the kernel's reason for refusing an
// overlay reaches the caller.
func TestOverlayMountErrorExplains(t *testing.T) {
	testutil.RequiresRoot(t)
	dir := t.TempDir()
	m := specs.Mount{Type: "overlay", Source: "overlay", Options: []string{
		"lowerdir=" + filepath.Join(dir, "missing"), "upperdir=" + dir, "workdir=" + dir}}
	err := MountAll([]specs.Mount{m}, dir)
	if err == nil {
		_ = UnmountAll(dir)
		t.Fatal("overlay on a missing lower dir mounted")
	}
	t.Logf("error: %v", err)
	if !strings.Contains(err.Error(), "missing") {
		t.Errorf("error does not name the bad layer: %v", err)
	}
}

func TestNewChoosesDriver(t *testing.T) {
	testutil.RequiresRoot(t)
	tests := []struct {
		name  string
		setup func(t *testing.T, root string)
		want  string
	}{
		{"overlay on ext4", func(t *testing.T, root string) {}, "overlay"},
		{"existing native store is kept", func(t *testing.T, root string) {
			s, err := NewNative(root)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Prepare(context.Background(), "k", "", nil); err != nil {
				t.Fatal(err)
			}
		}, "native"},
		{"native on top of overlayfs", func(t *testing.T, root string) {
			// overlayfs cannot use another overlay as its upper layer:
			// the probe must find that out and fall back.
			base := filepath.Dir(root)
			for _, d := range []string{"lower", "upper", "work", root} {
				if err := os.MkdirAll(filepath.Join(base, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			m := specs.Mount{Type: "overlay", Source: "overlay", Options: []string{"lowerdir=" + filepath.Join(base, "lower"),
				"upperdir=" + filepath.Join(base, "upper"), "workdir=" + filepath.Join(base, "work")}}
			if err := MountAll([]specs.Mount{m}, root); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = UnmountAll(root) })
		}, "native"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "root")
			if err := os.Mkdir(root, 0o755); err != nil {
				t.Fatal(err)
			}
			tc.setup(t, root)
			s, err := New(root)
			if err != nil {
				t.Fatal(err)
			}
			if s.Driver() != tc.want {
				t.Fatalf("New chose %s, want %s", s.Driver(), tc.want)
			}
			if tc.want == "native" && !strings.Contains(tc.name, "existing") {
				_, err := NewOverlay(root)
				t.Logf("NewOverlay: %v", err)
				if !errors.Is(err, errdefs.ErrNotSupported) {
					t.Errorf("NewOverlay: got %v, want ErrNotSupported", err)
				}
			}
			// Leftover probe directories would be garbage under root.
			matches, _ := filepath.Glob(filepath.Join(root, ".overlay-probe-*"))
			if len(matches) != 0 {
				t.Errorf("probe left %v", matches)
			}
		})
	}
}

// TestCleanupSparesPrepareInProgress: a directory without a record is an
// orphan only if no Prepare is still filling it.
func TestCleanupSparesPrepareInProgress(t *testing.T) {
	testutil.RequiresRoot(t)
	ctx := context.Background()
	s, err := openStore(t.TempDir(), "native")
	if err != nil {
		t.Fatal(err)
	}
	filling, release := make(chan string), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := s.prepare(ctx, "slow", "", nil, false, func(fsDir string, _ *record) error {
			filling <- fsDir
			<-release
			return os.WriteFile(filepath.Join(fsDir, "f"), nil, 0o644)
		})
		done <- err
	}()
	fsDir := <-filling
	if err := s.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(fsDir); err != nil {
		t.Fatalf("Cleanup removed a snapshot being prepared: %v", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(fsDir, "f")); err != nil {
		t.Fatal(err)
	}
}
