package runtime

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/testutil"
)

// exeCacheFixture is an exe cache in a temporary directory, with binaries
// (copies of sleep, each its own inode: its own version) to cache.
type exeCacheFixture struct {
	t        *testing.T
	dir, bin string
}

func newExeCacheFixture(t *testing.T) *exeCacheFixture {
	t.Helper()
	testutil.RequiresRoot(t)
	base := t.TempDir()
	f := &exeCacheFixture{t: t, dir: filepath.Join(base, "cache"), bin: filepath.Join(base, "bin")}
	for _, d := range []string{f.dir, f.bin} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	// Registered after TempDir's removal, so it runs first: the removal
	// cannot delete mount points.
	t.Cleanup(func() {
		for _, m := range f.mounts() {
			for unix.Unmount(m, unix.MNT_DETACH) == nil {
			}
		}
	})
	return f
}

// version copies sleep as a new binary and returns its path and the
// cache entry name boundExe would give it.
func (f *exeCacheFixture) version(name string) (bin, entry string) {
	f.t.Helper()
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		f.t.Skip("no sleep binary")
	}
	bin = filepath.Join(f.bin, name)
	in, err := os.Open(sleep)
	if err != nil {
		f.t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(bin, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o755)
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		f.t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		f.t.Fatal(err)
	}
	return bin, f.entryName(bin)
}

func (f *exeCacheFixture) entryName(bin string) string {
	var st unix.Stat_t
	if err := unix.Stat(bin, &st); err != nil {
		f.t.Fatal(err)
	}
	return fmt.Sprintf("%x-%x-%x", st.Dev, st.Ino, st.Ctim.Nano())
}

// cached mounts bin in the cache as boundExe does.
func (f *exeCacheFixture) cached(bin, entry string) string {
	f.t.Helper()
	p := filepath.Join(f.dir, entry)
	if err := mountBound(bin, p); err != nil {
		f.t.Fatal(err)
	}
	return p
}

// mounts lists the mount points under the cache directory.
func (f *exeCacheFixture) mounts() []string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		f.t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if fs := strings.Fields(l); len(fs) > 4 && strings.HasPrefix(fs[4], f.dir+"/") {
			out = append(out, fs[4])
		}
	}
	return out
}

func (f *exeCacheFixture) entries() []string {
	ents, err := os.ReadDir(f.dir)
	if err != nil {
		f.t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// TestBoundExeGC: the cache loses what can no longer be used at once, and
// mounted versions without a user once there are more than the limit;
// a version a process runs stays, and a collected mount still refuses
// writes through a descriptor held across the collection.
func TestBoundExeGC(t *testing.T) {
	f := newExeCacheFixture(t)

	runBin, running := f.version("running")
	runPath := f.cached(runBin, running)
	idleBin, idle := f.version("idle")
	idlePath := f.cached(idleBin, idle)
	deletedBin, deleted := f.version("deleted")
	f.cached(deletedBin, deleted)
	if err := os.Remove(deletedBin); err != nil {
		t.Fatal(err)
	}
	rewrittenBin, rewritten := f.version("rewritten")
	f.cached(rewrittenBin, rewritten)
	// A change to the inode (here its mode) changes its ctime: the
	// binary is another version now, under another entry name.
	if err := os.Chmod(rewrittenBin, 0o750); err != nil {
		t.Fatal(err)
	}
	// A file some runtime created but never mounted here.
	_, unmounted := f.version("unmounted")
	if err := os.WriteFile(filepath.Join(f.dir, unmounted), nil, 0o500); err != nil {
		t.Fatal(err)
	}
	foreign := filepath.Join(f.dir, "notes")
	if err := os.WriteFile(foreign, []byte("not an entry"), 0o600); err != nil {
		t.Fatal(err)
	}

	// A process runs the cached "running" version through its mount, as
	// a created container's init runs the runtime's binary.
	proc := exec.Command(runPath, "300")
	if err := proc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = proc.Process.Kill()
		_ = proc.Wait()
	})

	// Below the limit: only what cannot be used goes.
	removed := gcBoundExes(f.dir, 8)
	slices.Sort(removed)
	want := []string{deleted, rewritten, unmounted}
	slices.Sort(want)
	if !slices.Equal(removed, want) {
		t.Errorf("removed %v, want %v", removed, want)
	}
	if got, want := f.entries(), []string{"notes", idle, running}; !sameSet(got, want) {
		t.Errorf("entries %v, want %v", got, want)
	}

	// A descriptor of the idle version held across its collection, as an
	// attacker in a container would hold /proc/PID/exe.
	held, err := unix.Open(idlePath, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(held)

	// Over the limit: the version nobody runs goes, the running one stays.
	if removed := gcBoundExes(f.dir, 0); !slices.Equal(removed, []string{idle}) {
		t.Errorf("removed %v, want [%s]", removed, idle)
	}
	if got, want := f.entries(), []string{"notes", running}; !sameSet(got, want) {
		t.Errorf("entries %v, want %v", got, want)
	}
	if got := f.mounts(); !slices.Equal(got, []string{runPath}) {
		t.Errorf("mounts %v, want [%s]", got, runPath)
	}
	w, err := unix.Open("/proc/self/fd/"+strconv.Itoa(held), unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err == nil {
		unix.Close(w)
		t.Fatal("the collected mount let a write open through a held descriptor")
	}
	if !errors.Is(err, unix.EROFS) {
		t.Errorf("write open through a held descriptor: %v, want EROFS", err)
	}

	// Once the process is gone, so is its version.
	_ = proc.Process.Kill()
	_ = proc.Wait()
	if removed := gcBoundExes(f.dir, 0); !slices.Equal(removed, []string{running}) {
		t.Errorf("removed %v, want [%s]", removed, running)
	}
	if got := f.entries(); !slices.Equal(got, []string{"notes"}) {
		t.Errorf("entries %v, want only the foreign file", got)
	}
	if got := f.mounts(); len(got) != 0 {
		t.Errorf("mounts left: %v", got)
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// BenchmarkRunningExes measures the /proc scan that decides which cached
// versions are in use (what a new version's first run pays once the cache
// is over its limit).
func BenchmarkRunningExes(b *testing.B) {
	for b.Loop() {
		if _, err := runningExes(); err != nil {
			b.Fatal(err)
		}
	}
}
