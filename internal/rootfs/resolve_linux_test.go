package rootfs

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// A hostile image may contain symlinks that point at host paths; every
// resolution must stay inside the root.
func TestMkdirAllInRootContainsSymlinks(t *testing.T) {
	outside := t.TempDir()
	root := t.TempDir()
	for _, l := range []struct{ name, target string }{
		{"abs", outside},                  // absolute link to a host dir
		{"rel", "../../../../" + outside}, // climbing out with ..
		{"loop", "loop"},
		{"inabs", "/inside"}, // absolute, but meant for the container's root
	} {
		if err := os.Symlink(l.target, filepath.Join(root, l.name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(root, "inside"), 0o755); err != nil {
		t.Fatal(err)
	}
	rootF, err := os.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer rootF.Close()

	// Links to paths missing in the root get their targets created inside
	// it (runc's behaviour); nothing may resolve outside it.
	tests := []struct {
		name    string
		path    string
		wantErr bool
	}{
		{"plain", "/a/b/c", false},
		{"absolute symlink to host", "/abs/x", false},
		{"dotdot symlink to host", "/rel/y", false},
		{"absolute symlink inside", "/inabs/x", false},
		{"dotdot path", "/../../../z", false},
		{"symlink loop", "/loop/q", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := mkdirAllInRoot(rootF, tt.path, 0o755)
			if tt.wantErr {
				if err == nil {
					f.Close()
					t.Fatalf("mkdirAllInRoot(%q) succeeded, want error", tt.path)
				}
				return
			}
			if err != nil {
				t.Fatalf("mkdirAllInRoot(%q): %v", tt.path, err)
			}
			defer f.Close()
			got, err := os.Readlink(fdPath(f))
			if err != nil {
				t.Fatal(err)
			}
			if rel, err := filepath.Rel(root, got); err != nil || rel == ".." || filepath.IsAbs(rel) || len(rel) >= 2 && rel[:2] == ".." {
				t.Fatalf("%q resolved to %s, outside the root %s", tt.path, got, root)
			}
		})
	}
	ents, err := os.ReadDir(outside)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 0 {
		t.Fatalf("host directory %s was written to: %v", outside, ents)
	}
}

func TestCreateFileInRootDoesNotFollowOut(t *testing.T) {
	outside := t.TempDir()
	root := t.TempDir()
	if err := os.Symlink(filepath.Join(outside, "target"), filepath.Join(root, "file")); err != nil {
		t.Fatal(err)
	}
	rootF, err := os.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer rootF.Close()
	f, err := createFileInRoot(rootF, "/file")
	if err == nil {
		f.Close()
	}
	if err != nil {
		t.Fatalf("createFileInRoot through a dangling link: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(outside, "target")); err == nil {
		t.Fatalf("createFileInRoot created a file outside the root")
	}
	if _, err := os.Lstat(filepath.Join(root, outside, "target")); err != nil {
		t.Fatalf("the link's target was not created inside the root: %v", err)
	}
}

func TestParseMountOptions(t *testing.T) {
	tests := []struct {
		name  string
		opts  []string
		flags uintptr
		data  []string
		bind  bool
		rec   bool
		prop  int
	}{
		{"defaults", nil, 0, nil, false, false, 0},
		{"ro nosuid", []string{"ro", "nosuid", "nodev"}, unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV, nil, false, false, 0},
		{"rw clears ro", []string{"ro", "rw"}, 0, nil, false, false, 0},
		{"data", []string{"mode=755", "size=65536k", "nosuid"}, unix.MS_NOSUID, []string{"mode=755", "size=65536k"}, false, false, 0},
		{"rbind rprivate", []string{"rbind", "rprivate"}, 0, nil, true, true, 1},
		{"bind ro", []string{"bind", "ro"}, unix.MS_RDONLY, nil, true, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := parseMountOptions(tt.opts)
			if m.flags != tt.flags {
				t.Errorf("flags = %#x, want %#x", m.flags, tt.flags)
			}
			if len(m.data) != len(tt.data) {
				t.Errorf("data = %v, want %v", m.data, tt.data)
			}
			if m.bind != tt.bind || m.recursive != tt.rec {
				t.Errorf("bind/rec = %v/%v, want %v/%v", m.bind, m.recursive, tt.bind, tt.rec)
			}
			if len(m.propagation) != tt.prop {
				t.Errorf("propagation = %v, want %d entries", m.propagation, tt.prop)
			}
		})
	}
}

func TestMountPropagation(t *testing.T) {
	if f, ok := mountPropagation(""); !ok || f != unix.MS_SLAVE|unix.MS_REC {
		t.Errorf("default propagation = %#x, %v", f, ok)
	}
	if _, ok := mountPropagation("bogus"); ok {
		t.Error("bogus propagation accepted")
	}
}

// The one-level fast path only ever creates a plain directory under an
// existing one; everything else is left to the walk.
func TestMkdirLeafInRoot(t *testing.T) {
	outside := t.TempDir()
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "dev"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "dev", "dangling")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "gone"), filepath.Join(root, "dev", "gone")); err != nil {
		t.Fatal(err)
	}
	rootF, err := os.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer rootF.Close()
	tests := []struct {
		name   string
		path   string
		wantOK bool
	}{
		{"leaf under existing dir", "/dev/pts", true},
		{"trailing slash", "/dev/shm/", true},
		{"missing parent", "/run/lock", false},
		{"symlink at the leaf", "/dev/gone", false},
		{"dotdot", "/dev/../etc", false},
		{"root", "/", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, ok := mkdirLeafInRoot(rootF, tt.path, 0o755)
			if ok != tt.wantOK {
				t.Fatalf("mkdirLeafInRoot(%q) ok = %v, want %v", tt.path, ok, tt.wantOK)
			}
			if !ok {
				return
			}
			defer f.Close()
			got, err := os.Readlink(fdPath(f))
			if err != nil {
				t.Fatal(err)
			}
			if want := filepath.Join(root, filepath.Clean(tt.path)); got != want {
				t.Errorf("resolved to %s, want %s", got, want)
			}
		})
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Fatalf("host directory %s was written to: %v", outside, ents)
	}
}

func TestReadProcFile(t *testing.T) {
	// Larger than the first buffer, so it has to grow.
	want := make([]byte, 40<<10)
	for i := range want {
		want[i] = byte('a' + i%26)
	}
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, want, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := readProcFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("read %d bytes, want %d", len(got), len(want))
	}
	if _, err := readProcFile(filepath.Join(t.TempDir(), "missing")); !os.IsNotExist(err) {
		t.Errorf("missing file: err = %v, want not-exist", err)
	}
	mi, err := readProcFile("/proc/self/mountinfo")
	if err != nil || len(mi) == 0 {
		t.Errorf("/proc/self/mountinfo: %d bytes, %v", len(mi), err)
	}
}

func TestMkdirInDir(t *testing.T) {
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "cg"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(root, "cg", "existing"), 0o755); err != nil {
		t.Fatal(err)
	}
	rootF, err := os.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer rootF.Close()
	dir, err := os.Open(filepath.Join(root, "cg"))
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	tests := []struct {
		name    string
		wantErr bool
	}{
		{"cpu,cpuacct", false},
		{"existing", false},
		{"..", true},
		{"a/b", true},
		{"", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fd, err := mkdirInDir(rootF, dir, "/cg", tt.name)
			if tt.wantErr {
				if err == nil {
					unix.Close(fd)
					t.Fatalf("mkdirInDir(%q) succeeded, want error", tt.name)
				}
				return
			}
			if err != nil {
				t.Fatalf("mkdirInDir(%q): %v", tt.name, err)
			}
			defer unix.Close(fd)
			got, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
			if err != nil {
				t.Fatal(err)
			}
			if want := filepath.Join(root, "cg", tt.name); got != want {
				t.Errorf("opened %s, want %s", got, want)
			}
		})
	}
}
