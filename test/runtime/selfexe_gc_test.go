//go:build linux

package runtime_test

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/testutil"
)

// exeCacheDir is where berth-runtime keeps read-only mounts of its binary
// (internal/runtime/selfexe_linux.go).
const exeCacheDir = "/run/berth-runtime-exe"

// TestExeCacheCollects: running containers with many runtime binaries (as
// a host that builds many does) leaves few mounts in the exe cache, and
// never takes away the version a created container's init still runs.
func TestExeCacheCollects(t *testing.T) {
	r := newRT(t)
	if out, err := exec.Command(r.bin, "--version").Output(); err != nil || !strings.HasPrefix(string(out), "berth-runtime") {
		t.Skipf("the exe cache is berth-runtime's; runtime under test is %s", r.bin)
	}
	// Eleven versions: more than the cache keeps idle (8) plus the held
	// one and the newest. Each copy is its own inode, so its own version.
	const versions = 11
	dir := t.TempDir()
	bins := make([]string, versions)
	entries := make([]string, versions)
	for i := range bins {
		bins[i] = filepath.Join(dir, fmt.Sprintf("berth-runtime-%d", i))
		copyExecutable(t, r.bin, bins[i])
		var st unix.Stat_t
		if err := unix.Stat(bins[i], &st); err != nil {
			t.Fatal(err)
		}
		entries[i] = filepath.Join(exeCacheDir, fmt.Sprintf("%x-%x-%x", st.Dev, st.Ino, st.Ctim.Nano()))
	}
	// Whatever the outcome, none of the test's versions stays mounted.
	t.Cleanup(func() {
		for _, e := range entries {
			for unix.Unmount(e, unix.MNT_DETACH) == nil {
			}
			os.Remove(e)
		}
	})

	// Version 0 creates a container and leaves it created: its init runs
	// version 0's cached binary until start.
	held := r.newID()
	hb := r.bundle(held, testutil.Shell("echo started > /held"))
	r.bin = bins[0]
	r.must("create", "--bundle", hb.Dir, held)

	for i := 1; i < versions; i++ {
		r.bin = bins[i]
		wantOut(t, r.runFG(testutil.Shell(fmt.Sprintf("echo %d", i))), fmt.Sprint(i))
	}

	var left []int
	for i, e := range entries {
		if isMountPoint(t, e) {
			left = append(left, i)
		}
	}
	t.Logf("versions still mounted: %v", left)
	if len(left) == 0 || left[0] != 0 {
		t.Errorf("the created container's version was collected (versions still mounted: %v)", left)
	}
	if len(left) > 9 {
		t.Errorf("%d versions still mounted, want at most 9: the cache was never collected", len(left))
	}

	// The held container still starts, through the binary it was created with.
	r.bin = bins[0]
	r.must("start", held)
	r.waitStatus(held, specs.StateStopped)
	if got := readFile(t, filepath.Join(hb.Rootfs, "held")); got != "started" {
		t.Errorf("held container wrote %q", got)
	}
}

// isMountPoint reports whether p is in this mount namespace's mount table.
func isMountPoint(t *testing.T, p string) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 4 && f[4] == p {
			return true
		}
	}
	return false
}

func copyExecutable(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
