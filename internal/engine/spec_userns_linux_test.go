package engine

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/snapshot"
	"github.com/berth-dev/berth/internal/testutil"
	"github.com/moby/moby/api/types/container"
	"golang.org/x/sys/unix"
)

func TestParseUserns(t *testing.T) {
	for _, tc := range []struct {
		mode string
		want usernsRange
		auto bool
		ok   bool
	}{
		{"", usernsRange{}, false, true},
		{"host", usernsRange{}, false, true},
		{"auto", usernsRange{size: 65536}, true, true},
		{"auto:size=1000", usernsRange{size: 1000}, true, true},
		{"100000:200000:65536", usernsRange{uid: 100000, gid: 200000, size: 65536}, false, true},
		{"auto:size=0", usernsRange{}, false, false},
		{"1:2", usernsRange{}, false, false},
		{"1:2:0", usernsRange{}, false, false},
		{"4294967295:0:2", usernsRange{}, false, false},
		{"private", usernsRange{}, false, false},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			r, auto, err := parseUserns(tc.mode)
			if (err == nil) != tc.ok || (tc.ok && (r != tc.want || auto != tc.auto)) {
				t.Fatalf("got %+v %v %v", r, auto, err)
			}
		})
	}
}

func TestAllocateUserns(t *testing.T) {
	e := &Engine{opts: Options{Root: t.TempDir()}}
	a, b := &Container{ID: "a"}, &Container{ID: "b"}
	// Records must exist for the allocations to count as live.
	for _, c := range []*Container{a, b} {
		if err := e.writeContainer(c); err != nil {
			t.Fatal(err)
		}
	}
	ra, err := e.allocateUserns(a, 65536)
	if err != nil {
		t.Fatal(err)
	}
	rb, err := e.allocateUserns(b, 65536*2)
	if err != nil {
		t.Fatal(err)
	}
	if ra.uid != usernsAutoBase || rb.uid != usernsAutoBase+65536 || rb.size != 131072 {
		t.Fatalf("ranges %+v %+v", ra, rb)
	}
	again, err := e.allocateUserns(a, 65536)
	if err != nil || again != ra {
		t.Fatalf("a's range changed: %+v %v", again, err)
	}
	// a goes away: its block is reused; b's two blocks are not.
	if err := os.RemoveAll(filepath.Join(e.containersDir(), "a")); err != nil {
		t.Fatal(err)
	}
	c := &Container{ID: "c"}
	if err := e.writeContainer(c); err != nil {
		t.Fatal(err)
	}
	rc, err := e.allocateUserns(c, 65536*2)
	if err != nil {
		t.Fatal(err)
	}
	if rc.uid != usernsAutoBase+3*65536 {
		t.Fatalf("c got %+v, want the first two free blocks after b's", rc)
	}
}

// TestUsernsIdmappedRootfs runs a container in a user namespace over a real
// overlay snapshot: the image's root-owned files appear owned by the
// container's root, it can write, what it writes is stored as uid 0 in the
// upper layer, and a volume is idmapped the same way.
func TestUsernsIdmappedRootfs(t *testing.T) {
	testutil.RequiresRoot(t)
	busybox, err := testutil.BusyboxRootfs()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	root := t.TempDir()
	// The mapped root must be able to reach the layers.
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	sn, err := snapshot.New(filepath.Join(root, "snapshots"))
	if err != nil {
		t.Fatal(err)
	}
	e := &Engine{opts: Options{Root: root}, snaps: sn}
	dir, err := sn.Prepare(ctx, "layer-active", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", busybox+"/.", dir).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	if err := sn.Commit(ctx, "layer", "layer-active", ""); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"1048576:1048576:65536", "auto"} {
		t.Run(mode, func(t *testing.T) {
			c := shContainer("id -u; cat /proc/self/uid_map; stat -c %u /bin/busybox; touch /new /data/v && stat -c %u /new /data/v",
				container.HostConfig{UsernsMode: container.UsernsMode(mode), Binds: []string{"vol:/data"}})
			c.Snapshot = c.ID
			if err := e.writeContainer(c); err != nil {
				t.Fatal(err)
			}
			if _, err := sn.Prepare(ctx, c.ID, "layer", nil); err != nil {
				t.Fatal(err)
			}
			rootfs := filepath.Join(t.TempDir(), "rootfs")
			if err := os.MkdirAll(rootfs, 0o755); err != nil {
				t.Fatal(err)
			}
			for _, d := range []string{filepath.Dir(rootfs), filepath.Dir(filepath.Dir(rootfs))} {
				_ = os.Chmod(d, 0o755)
			}
			mounts, err := sn.Mounts(ctx, c.ID)
			if err != nil {
				t.Fatal(err)
			}
			if err := snapshot.MountAll(mounts, rootfs); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if err := snapshot.UnmountAll(rootfs); err != nil {
					t.Error(err)
				}
			})
			env, err := e.prepareMounts(ctx, c, rootfs)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.prepareUserns(ctx, c, rootfs, &env); err != nil {
				t.Fatal(err)
			}
			r := runBuiltSpec(t, c, rootfs, env)
			want := "0\n         0    1048576      65536\n0\n0\n0\n"
			if r.code != 0 || r.stdout != want {
				t.Fatalf("exit %d\nstdout %q\nwant   %q\nstderr %s", r.code, r.stdout, want, r.stderr)
			}
			// The upper layer is not idmapped: it holds the container's
			// writes under their host IDs. The volume is: it holds uid 0.
			upper, err := sn.UpperDir(ctx, c.ID)
			if err != nil {
				t.Fatal(err)
			}
			var st unix.Stat_t
			if err := unix.Stat(filepath.Join(upper, "new"), &st); err != nil || st.Uid != env.uidMap[0].HostID {
				t.Fatalf("upper file: uid %d err %v", st.Uid, err)
			}
			if err := unix.Stat(filepath.Join(root, "volumes", "vol", "_data", "v"), &st); err != nil || st.Uid != 0 {
				t.Fatalf("volume file: uid %d err %v", st.Uid, err)
			}
			if out, _ := os.ReadFile("/proc/self/mountinfo"); strings.Count(string(out), rootfs) == 0 {
				t.Fatal("rootfs not mounted")
			}
		})
	}
}
