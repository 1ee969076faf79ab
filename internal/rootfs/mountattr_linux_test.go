package rootfs

import (
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/testutil"
)

func TestMountAttrFor(t *testing.T) {
	tests := []struct {
		name     string
		flags    uintptr
		set, clr uint64
	}{
		{"none clears read-only only", 0, 0, unix.MOUNT_ATTR_RDONLY},
		{"cgroup defaults",
			unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_RELATIME,
			unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC, 0},
		{"noatime replaces the atime mode", unix.MS_NOATIME,
			unix.MOUNT_ATTR_NOATIME, unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR__ATIME},
		{"strictatime wins over noatime", unix.MS_NOATIME | unix.MS_STRICTATIME,
			unix.MOUNT_ATTR_STRICTATIME, unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR__ATIME},
		{"nodiratime", unix.MS_NODIRATIME | unix.MS_RDONLY,
			unix.MOUNT_ATTR_NODIRATIME | unix.MOUNT_ATTR_RDONLY, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := mountAttrFor(tt.flags)
			if a.Attr_set != tt.set || a.Attr_clr != tt.clr {
				t.Errorf("mountAttrFor(%#x) = set %#x clr %#x, want set %#x clr %#x", tt.flags, a.Attr_set, a.Attr_clr, tt.set, tt.clr)
			}
		})
	}
}

func TestLeavesNoSharedMount(t *testing.T) {
	tests := []struct {
		prop string
		want bool
	}{
		{"", true}, // rslave, the default
		{"rslave", true},
		{"rprivate", true},
		{"runbindable", true},
		{"slave", false}, // only "/" changes; others may still be shared
		{"private", false},
		{"shared", false},
		{"rshared", false},
	}
	for _, tt := range tests {
		t.Run(tt.prop, func(t *testing.T) {
			p, ok := mountPropagation(tt.prop)
			if !ok {
				t.Fatalf("mountPropagation(%q) unknown", tt.prop)
			}
			if got := leavesNoSharedMount(p); got != tt.want {
				t.Errorf("leavesNoSharedMount(%q) = %v, want %v", tt.prop, got, tt.want)
			}
		})
	}
}

// inMountNS runs fn on a thread of its own in a new private mount
// namespace, so the test's mounts never reach the host. The thread is
// never unlocked, so Go retires it with the namespace when fn returns.
func inMountNS(t *testing.T, fn func()) {
	t.Helper()
	testutil.RequiresRoot(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNS | unix.CLONE_FS); err != nil {
			t.Errorf("unshare: %v", err)
			return
		}
		if err := unix.Mount("", "/", "", unix.MS_PRIVATE|unix.MS_REC, ""); err != nil {
			t.Errorf("make / private: %v", err)
			return
		}
		fn()
	}()
	<-done
}

func statfsFlags(t *testing.T, path string) int64 {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		t.Errorf("statfs %s: %v", path, err)
	}
	return st.Flags
}

// The cgroup tree gets its flags in one recursive call: the tmpfs and the
// binds on it all end up read-only, nosuid, nodev and noexec.
func TestSetCgroupTreeFlags(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	tree := filepath.Join(dir, "tree")
	for _, d := range []string{src, tree} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	inMountNS(t, func() {
		flags := uintptr(unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
		if err := unix.Mount("tmpfs", src, "tmpfs", 0, ""); err != nil {
			t.Errorf("mount src: %v", err)
			return
		}
		if err := unix.Mount("tmpfs", tree, "tmpfs", flags&^unix.MS_RDONLY, ""); err != nil {
			t.Errorf("mount tree: %v", err)
			return
		}
		rootF, err := os.Open("/")
		if err != nil {
			t.Error(err)
			return
		}
		defer rootF.Close()
		tmpfs, err := os.OpenFile(tree, unix.O_PATH|unix.O_DIRECTORY, 0)
		if err != nil {
			t.Error(err)
			return
		}
		defer tmpfs.Close()
		var bound []string
		for _, name := range []string{"a", "b,c"} {
			fd, err := mkdirInDir(rootF, tmpfs, tree, name)
			if err != nil {
				t.Errorf("mkdirInDir %s: %v", name, err)
				return
			}
			err = unix.Mount(src, "/proc/self/fd/"+strconv.Itoa(fd), "", unix.MS_BIND, "")
			unix.Close(fd)
			if err != nil {
				t.Errorf("bind %s: %v", name, err)
				return
			}
			bound = append(bound, name)
		}
		if err := setCgroupTreeFlags(tmpfs, bound, flags|unix.MS_RELATIME); err != nil {
			t.Errorf("setCgroupTreeFlags: %v", err)
			return
		}
		want := int64(unix.ST_RDONLY | unix.ST_NOSUID | unix.ST_NODEV | unix.ST_NOEXEC)
		for _, p := range []string{tree, filepath.Join(tree, "a"), filepath.Join(tree, "b,c")} {
			if got := statfsFlags(t, p); got&want != want {
				t.Errorf("%s: statfs flags %#x, want %#x set", p, got, want)
			}
		}
		// The source mount itself is untouched.
		if got := statfsFlags(t, src); got&unix.ST_RDONLY != 0 {
			t.Errorf("source became read-only: %#x", got)
		}
	})
}

func TestSetReadonlyKeepsFlags(t *testing.T) {
	dir := t.TempDir()
	inMountNS(t, func() {
		if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NOEXEC, ""); err != nil {
			t.Errorf("mount: %v", err)
			return
		}
		if err := setReadonly(dir); err != nil {
			t.Errorf("setReadonly: %v", err)
			return
		}
		want := int64(unix.ST_RDONLY | unix.ST_NOSUID | unix.ST_NOEXEC)
		if got := statfsFlags(t, dir); got&want != want {
			t.Errorf("statfs flags %#x, want %#x set", got, want)
		}
	})
}
