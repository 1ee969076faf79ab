//go:build linux

// Package image_test drives the berth CLI as a user would, for images: it
// starts real registries on 127.0.0.1 (Debian's docker-registry), puts the
// test images (internal/testutil/images.go) there with skopeo, and pulls,
// runs, lists, pushes, saves and loads them with berth, checking the results
// with tools no one here wrote (skopeo, umoci, podman).
//
// Run as root: go test -count=1 ./test/image/
// BERTH_BINARY=/path/to/berth tests a prebuilt CLI (default: a fresh build).
package image_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/testutil"
	"github.com/berth-dev/berth/internal/testutil/netclean"
)

var berthBin string

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	if os.Geteuid() != 0 {
		return m.Run() // every test skips (testutil.RequiresRoot)
	}
	bin, cleanup, err := testutil.BerthBinary()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer cleanup()
	berthBin = bin
	return m.Run()
}

// Images are built once per test binary (and cached on disk across runs).
var (
	busyboxOnce, debianOnce sync.Once
	busyboxImg, debianImg   *testutil.ImageLayout
	busyboxErr, debianErr   error
)

func busybox(t *testing.T) *testutil.ImageLayout {
	t.Helper()
	busyboxOnce.Do(func() { busyboxImg, busyboxErr = testutil.BusyboxImage() })
	if busyboxErr != nil {
		t.Fatal(busyboxErr)
	}
	return busyboxImg
}

func debian(t *testing.T) *testutil.ImageLayout {
	t.Helper()
	debianOnce.Do(func() { debianImg, debianErr = testutil.DebianImage() })
	if debianErr != nil {
		t.Fatal(debianErr)
	}
	return debianImg
}

// berth is the CLI with one test's private store (--root), state (--state)
// and Docker config directory (DOCKER_CONFIG: login writes there).
type berth struct {
	t            *testing.T
	dir          string
	root, state  string
	dockerConfig string
	env          []string // extra environment, KEY=VALUE
}

func newBerth(t *testing.T) *berth {
	t.Helper()
	testutil.RequiresRoot(t)
	dir := t.TempDir()
	// t.TempDir is 0700; containers that run as another user must still
	// reach their rootfs below it.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	b := &berth{t: t, dir: dir, root: filepath.Join(dir, "root"), state: filepath.Join(dir, "state"),
		dockerConfig: filepath.Join(dir, "docker")}
	// Registered after TempDir's cleanup, so it runs first: nothing may stay
	// mounted under dir when the directory is removed.
	t.Cleanup(func() {
		// Containers' networks first (the instance's default bridge).
		if err := netclean.Remove(b.root, b.state); err != nil {
			t.Logf("cleanup: networks: %v", err)
		}
		unmountUnder(t, dir)
	})
	return b
}

// with returns b reporting to t: subtests use their own t (failing a parent
// from a subtest is an error), sharing b's store.
func (b *berth) with(t *testing.T) *berth {
	c := *b
	c.t = t
	return &c
}

// result of one berth command.
type result struct {
	args           []string
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("berth %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// command builds `berth --root R --state S args...`.
func (b *berth) command(ctx context.Context, args ...string) *exec.Cmd {
	full := append([]string{"--root", b.root, "--state", b.state}, args...)
	cmd := exec.CommandContext(ctx, berthBin, full...)
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+b.dockerConfig)
	cmd.Env = append(cmd.Env, b.env...)
	cmd.SysProcAttr = &unix.SysProcAttr{Setpgid: true} // kill -9 reaches its children
	return cmd
}

// run runs berth with stdin (may be "") and a 5-minute cap.
func (b *berth) runIn(stdin string, args ...string) result {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := b.command(ctx, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	res := result{args: args, code: cmd.ProcessState.ExitCode(), stdout: out.String(), stderr: errb.String()}
	if err != nil && cmd.ProcessState == nil {
		b.t.Fatalf("berth %s: %v", strings.Join(args, " "), err)
	}
	if ctx.Err() != nil {
		b.t.Fatalf("berth %s: timed out\n%s", strings.Join(args, " "), res)
	}
	return res
}

func (b *berth) run(args ...string) result { b.t.Helper(); return b.runIn("", args...) }

// ok runs berth, fails the test unless it exits 0, and returns stdout.
func (b *berth) ok(args ...string) string {
	b.t.Helper()
	r := b.run(args...)
	if r.code != 0 {
		b.t.Fatalf("%s", r)
	}
	return r.stdout
}

// fails runs berth and fails the test unless it exits non-zero with a
// message on stderr that matches pattern (case-insensitive).
func (b *berth) fails(pattern string, args ...string) result {
	b.t.Helper()
	r := b.run(args...)
	if r.code == 0 {
		b.t.Fatalf("expected failure: %s", r)
	}
	if !regexp.MustCompile("(?i)" + pattern).MatchString(r.stderr) {
		b.t.Errorf("stderr does not match %q: %s", pattern, r)
	}
	return r
}

// storeFiles lists every path under the store (--root), sorted, leaving out
// lock files (which may persist harmlessly). Two listings taken after
// `image prune` compare the store's state: leftovers show up as extra paths.
func (b *berth) storeFiles() []string {
	b.t.Helper()
	var paths []string
	err := filepath.WalkDir(b.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if name == "lock" || strings.HasSuffix(name, ".lock") {
			return nil
		}
		rel, _ := filepath.Rel(b.root, p)
		paths = append(paths, rel)
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		b.t.Fatal(err)
	}
	sort.Strings(paths)
	return paths
}

// blobs lists the digests in the content store.
func (b *berth) blobs() []string {
	ents, err := os.ReadDir(filepath.Join(b.root, "content", "blobs", "sha256"))
	if err != nil && !os.IsNotExist(err) {
		b.t.Fatal(err)
	}
	var ds []string
	for _, e := range ents {
		ds = append(ds, "sha256:"+e.Name())
	}
	sort.Strings(ds)
	return ds
}

// ingests lists leftover ingests (partial downloads) in the content store.
func (b *berth) ingests() []string {
	ents, _ := os.ReadDir(filepath.Join(b.root, "content", "ingest"))
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// imageBlobs is the set of blobs an image consists of.
func imageBlobs(l *testutil.ImageLayout) []string {
	ds := []string{l.Manifest.Digest.String(), l.ConfigDesc.Digest.String()}
	for _, d := range l.Layers {
		ds = append(ds, d.Digest.String())
	}
	sort.Strings(ds)
	return slices.Compact(ds)
}

// mounts lists mount points at or below dir.
func mounts(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 {
			// Octal escapes (\040) only matter for names with spaces; ours have none.
			if mp := fields[4]; mp == dir || strings.HasPrefix(mp, dir+"/") {
				out = append(out, mp)
			}
		}
	}
	return out
}

// unmountUnder detaches every mount below dir, deepest first, and reports
// them: a command that finished should not have left any.
func unmountUnder(t *testing.T, dir string) {
	ms := mounts(dir)
	sort.Sort(sort.Reverse(sort.StringSlice(ms)))
	for _, m := range ms {
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil {
			t.Logf("cleanup: unmount %s: %v", m, err)
		}
	}
}

// shortID is how `images` shows an image ID: 12 hex digits.
func shortID(l *testutil.ImageLayout) string { return l.ID().Encoded()[:12] }

// tableHeader returns the columns of a Docker-style table's header line
// (columns are separated by at least two spaces).
func tableHeader(out string) []string {
	line, _, _ := strings.Cut(out, "\n")
	return regexp.MustCompile(`\s{2,}`).Split(strings.TrimSpace(line), -1)
}

// tableRows splits the rows after the header into columns.
func tableRows(out string) [][]string {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	var rows [][]string
	for _, l := range lines[1:] {
		rows = append(rows, regexp.MustCompile(`\s{2,}`).Split(strings.TrimSpace(l), -1))
	}
	return rows
}

func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}
