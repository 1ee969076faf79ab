// Package snapshottest is the test suite every snapshot.Snapshotter must
// pass. It is imported only by tests.
package snapshottest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/snapshot"
	"github.com/berth-dev/berth/internal/testutil"
)

// RunSuite runs the shared tests against snapshotters made by
// newSnapshotter, each on a fresh root. Calling newSnapshotter again on the
// same root must reopen the same store.
func RunSuite(t *testing.T, newSnapshotter func(t *testing.T, root string) snapshot.Snapshotter) {
	// Snapshots carry files of any owner and device nodes, and are mounted.
	testutil.RequiresRoot(t)
	tests := []struct {
		name string
		fn   func(t *testing.T, s snapshot.Snapshotter, reopen func() snapshot.Snapshotter)
	}{
		{"Lifecycle", testLifecycle},
		{"ChainMount", testChainMount},
		{"Deletions", testDeletions},
		{"RemoveParentRefused", testRemoveParentRefused},
		{"CommitExistingName", testCommitExistingName},
		{"CommitChain", testCommitChain},
		{"CleanupOrphans", testCleanupOrphans},
		{"ConcurrentPrepare", testConcurrentPrepare},
		{"LongChain", testLongChain},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			s := newSnapshotter(t, root)
			tc.fn(t, s, func() snapshot.Snapshotter { return newSnapshotter(t, root) })
		})
	}
}

// layer describes one change set: files to write and paths to delete.
type layer struct {
	files   map[string]string
	deletes []string
}

// commitLayer prepares an active snapshot on parent, applies l the way an
// unpacker would for this driver, and commits it as name.
func commitLayer(t *testing.T, s snapshot.Snapshotter, name, parent string, l layer) {
	t.Helper()
	ctx := context.Background()
	key := "extract-" + name
	dir, err := s.Prepare(ctx, key, parent, nil)
	if err != nil {
		t.Fatalf("Prepare %s: %v", key, err)
	}
	writeFiles(t, dir, l.files)
	for _, p := range l.deletes {
		deletePath(t, s, dir, p)
	}
	if err := s.Commit(ctx, name, key, parent); err != nil {
		t.Fatalf("Commit %s: %v", name, err)
	}
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for p, content := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// mount mounts key on a fresh directory and unmounts it when the test ends,
// failed or not.
func mount(t *testing.T, s snapshot.Snapshotter, key string) string {
	t.Helper()
	mounts, err := s.Mounts(context.Background(), key)
	if err != nil {
		t.Fatalf("Mounts %s: %v", key, err)
	}
	target := filepath.Join(t.TempDir(), "rootfs")
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := snapshot.MountAll(mounts, target); err != nil {
		t.Fatalf("MountAll %s (%+v): %v", key, mounts, err)
	}
	t.Cleanup(func() {
		if err := snapshot.UnmountAll(target); err != nil {
			t.Errorf("UnmountAll %s: %v", target, err)
		}
	})
	return target
}

// checkTree asserts the files (path → content) present and the paths absent.
func checkTree(t *testing.T, dir string, want map[string]string, absent []string) {
	t.Helper()
	for p, content := range want {
		b, err := os.ReadFile(filepath.Join(dir, p))
		if err != nil {
			t.Errorf("%s: %v", p, err)
		} else if string(b) != content {
			t.Errorf("%s = %q, want %q", p, b, content)
		}
	}
	for _, p := range absent {
		if _, err := os.Lstat(filepath.Join(dir, p)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: should be absent, Lstat says %v", p, err)
		}
	}
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: got %v, want %v", what, err, want)
	}
}

func keys(t *testing.T, s snapshot.Snapshotter) []string {
	t.Helper()
	var ks []string
	if err := s.Walk(context.Background(), func(i snapshot.Info) error { ks = append(ks, i.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	sort.Strings(ks)
	return ks
}

func testLifecycle(t *testing.T, s snapshot.Snapshotter, reopen func() snapshot.Snapshotter) {
	ctx := context.Background()
	labels := map[string]string{"containerd.io/gc.root": "yes"}
	dir, err := s.Prepare(ctx, "sha256:layer/1 with odd chars", "", labels)
	if err != nil {
		t.Fatal(err)
	}
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
		t.Fatalf("new snapshot dir: %v entries, %v", entries, err)
	}
	writeFiles(t, dir, map[string]string{"etc/hostname": "base"})
	info, err := s.Stat(ctx, "sha256:layer/1 with odd chars")
	if err != nil || info.Kind != snapshot.KindActive || info.Labels["containerd.io/gc.root"] != "yes" || info.Created.IsZero() {
		t.Fatalf("Stat active = %+v, %v", info, err)
	}
	_, err = s.Prepare(ctx, "sha256:layer/1 with odd chars", "", nil)
	wantErr(t, "Prepare existing key", err, errdefs.ErrAlreadyExists)
	_, err = s.Prepare(ctx, "x", "missing", nil)
	wantErr(t, "Prepare on missing parent", err, errdefs.ErrNotFound)
	_, err = s.Prepare(ctx, "x", "sha256:layer/1 with odd chars", nil)
	wantErr(t, "Prepare on active parent", err, errdefs.ErrNotFound)

	if err := s.Commit(ctx, "base", "sha256:layer/1 with odd chars", ""); err != nil {
		t.Fatal(err)
	}
	_, err = s.Stat(ctx, "sha256:layer/1 with odd chars")
	wantErr(t, "Stat after commit", err, errdefs.ErrNotFound)
	err = s.Commit(ctx, "again", "sha256:layer/1 with odd chars", "")
	wantErr(t, "Commit of committed key", err, errdefs.ErrNotFound)
	if info, err := s.Stat(ctx, "base"); err != nil || info.Kind != snapshot.KindCommitted || info.Parent != "" {
		t.Fatalf("Stat committed = %+v, %v", info, err)
	}
	if u, err := s.Usage(ctx, "base"); err != nil || u <= 0 {
		t.Errorf("Usage = %d, %v", u, err)
	}

	// The store survives reopening: records are on disk, not in memory.
	s = reopen()
	cdir, err := s.Prepare(ctx, "ctr", "base", nil)
	if err != nil {
		t.Fatal(err)
	}
	if info, _ := s.Stat(ctx, "ctr"); info.Parent != "base" {
		t.Errorf("ctr parent = %q", info.Parent)
	}
	if up, err := s.UpperDir(ctx, "ctr"); err != nil || up != cdir {
		t.Errorf("UpperDir = %q, %v; Prepare gave %q", up, err, cdir)
	}
	lowers, err := s.LowerDirs(ctx, "ctr")
	if err != nil || len(lowers) != 1 {
		t.Fatalf("LowerDirs = %v, %v", lowers, err)
	}
	checkTree(t, lowers[0], map[string]string{"etc/hostname": "base"}, nil)
	if got := strings.Join(keys(t, s), ","); got != "base,ctr" {
		t.Errorf("Walk = %s", got)
	}
	for _, k := range []string{"ctr", "base"} {
		if err := s.Remove(ctx, k); err != nil {
			t.Fatalf("Remove %s: %v", k, err)
		}
	}
	wantErr(t, "Remove twice", s.Remove(ctx, "base"), errdefs.ErrNotFound)
	if _, err := os.Stat(cdir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("removed snapshot's dir still there: %v", err)
	}
	if ks := keys(t, s); len(ks) != 0 {
		t.Errorf("Walk after removing all = %v", ks)
	}
}

func testChainMount(t *testing.T, s snapshot.Snapshotter, _ func() snapshot.Snapshotter) {
	ctx := context.Background()
	commitLayer(t, s, "l1", "", layer{files: map[string]string{"a": "1", "dir/b": "1"}})
	commitLayer(t, s, "l2", "l1", layer{files: map[string]string{"a": "2", "c": "2"}})
	commitLayer(t, s, "l3", "l2", layer{files: map[string]string{"dir/d": "3"}})
	if _, err := s.Prepare(ctx, "ctr", "l3", nil); err != nil {
		t.Fatal(err)
	}
	lowers, err := s.LowerDirs(ctx, "ctr")
	if err != nil || len(lowers) != 3 {
		t.Fatalf("LowerDirs = %v, %v", lowers, err)
	}
	checkTree(t, lowers[0], map[string]string{"dir/d": "3"}, nil) // top first

	root := mount(t, s, "ctr")
	checkTree(t, root, map[string]string{"a": "2", "dir/b": "1", "c": "2", "dir/d": "3"}, nil)
	writeFiles(t, root, map[string]string{"written-by-container": "x"})
	upper, err := s.UpperDir(ctx, "ctr")
	if err != nil {
		t.Fatal(err)
	}
	checkTree(t, upper, map[string]string{"written-by-container": "x"}, nil)
	for _, l := range lowers {
		checkTree(t, l, nil, []string{"written-by-container"})
	}

	// A committed snapshot mounts read-only with its whole chain.
	ro := mount(t, s, "l2")
	checkTree(t, ro, map[string]string{"a": "2", "dir/b": "1", "c": "2"}, []string{"dir/d"})
	if err := os.WriteFile(filepath.Join(ro, "nope"), nil, 0o644); err == nil {
		t.Error("wrote into a committed snapshot's mount")
	}
}

func testDeletions(t *testing.T, s snapshot.Snapshotter, _ func() snapshot.Snapshotter) {
	ctx := context.Background()
	commitLayer(t, s, "l1", "", layer{files: map[string]string{"a": "1", "b": "1", "dir/x": "1", "dir/y": "1"}})
	commitLayer(t, s, "l2", "l1", layer{deletes: []string{"a", "dir/x"}})
	commitLayer(t, s, "l3", "l2", layer{files: map[string]string{"dir/x": "again"}})
	for _, tc := range []struct {
		parent string
		want   map[string]string
		absent []string
	}{
		{"l2", map[string]string{"b": "1", "dir/y": "1"}, []string{"a", "dir/x"}},
		{"l3", map[string]string{"b": "1", "dir/y": "1", "dir/x": "again"}, []string{"a"}},
	} {
		key := "ctr-on-" + tc.parent
		if _, err := s.Prepare(ctx, key, tc.parent, nil); err != nil {
			t.Fatal(err)
		}
		checkTree(t, mount(t, s, key), tc.want, tc.absent)
	}
}

func testRemoveParentRefused(t *testing.T, s snapshot.Snapshotter, _ func() snapshot.Snapshotter) {
	ctx := context.Background()
	commitLayer(t, s, "l1", "", layer{files: map[string]string{"a": "1"}})
	commitLayer(t, s, "l2", "l1", layer{files: map[string]string{"b": "2"}})
	if _, err := s.Prepare(ctx, "ctr", "l2", nil); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "Remove l1 (has committed child)", s.Remove(ctx, "l1"), errdefs.ErrConflict)
	wantErr(t, "Remove l2 (has active child)", s.Remove(ctx, "l2"), errdefs.ErrConflict)
	for _, k := range []string{"ctr", "l2", "l1"} {
		if err := s.Remove(ctx, k); err != nil {
			t.Fatalf("Remove %s: %v", k, err)
		}
	}
}

func testCommitExistingName(t *testing.T, s snapshot.Snapshotter, _ func() snapshot.Snapshotter) {
	ctx := context.Background()
	var dirs []string
	for _, k := range []string{"unpack-1", "unpack-2"} {
		d, err := s.Prepare(ctx, k, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		writeFiles(t, d, map[string]string{"f": k})
		dirs = append(dirs, d)
	}
	if err := s.Commit(ctx, "layer", "unpack-1", ""); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "second Commit to one name", s.Commit(ctx, "layer", "unpack-2", ""), errdefs.ErrAlreadyExists)
	_, err := s.Stat(ctx, "unpack-2")
	wantErr(t, "Stat of the losing active snapshot", err, errdefs.ErrNotFound)
	if _, err := os.Stat(dirs[1]); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("losing snapshot's dir still there: %v", err)
	}
	up, err := s.UpperDir(ctx, "layer")
	if err != nil {
		t.Fatal(err)
	}
	checkTree(t, up, map[string]string{"f": "unpack-1"}, nil)
}

// testCleanupOrphans simulates a kill -9 between creating a snapshot's
// directory and writing its record (or between deleting a record and its
// directory): an unreferenced directory beside the real ones.
func testCleanupOrphans(t *testing.T, s snapshot.Snapshotter, reopen func() snapshot.Snapshotter) {
	ctx := context.Background()
	dir, err := s.Prepare(ctx, "keep", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	writeFiles(t, dir, map[string]string{"kept": "yes"})
	// Prepare returns <snapshots>/<id>/<fs>: orphans go beside <id>.
	snapshots := filepath.Dir(filepath.Dir(dir))
	orphan := filepath.Join(snapshots, "999999")
	writeFiles(t, orphan, map[string]string{"fs/etc/passwd": "root:x:0:0", "work/x": ""})
	if err := os.Chmod(filepath.Join(orphan, "fs", "etc"), 0); err != nil {
		t.Fatal(err)
	}
	s = reopen()
	if err := s.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(orphan); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("orphan survived Cleanup: %v", err)
	}
	checkTree(t, dir, map[string]string{"kept": "yes"}, nil)
	// The next Prepare is unaffected, even if it is handed the orphan's id.
	if _, err := s.Prepare(ctx, "next", "", nil); err != nil {
		t.Fatal(err)
	}
}

func testConcurrentPrepare(t *testing.T, s snapshot.Snapshotter, reopen func() snapshot.Snapshotter) {
	ctx := context.Background()
	commitLayer(t, s, "base", "", layer{files: map[string]string{"etc/os-release": "base"}})
	const distinct, same = 12, 6
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		dirs     = map[string]bool{}
		sameWins int
		errs     []error
	)
	for i := range distinct + same {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Separate instances, as separate processes would have.
			inst := s
			if i%2 == 1 {
				inst = reopen()
			}
			key := fmt.Sprintf("ctr-%d", i)
			if i >= distinct {
				key = "same"
			}
			d, err := inst.Prepare(ctx, key, "base", nil)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				if dirs[d] {
					errs = append(errs, fmt.Errorf("dir %s handed out twice", d))
				}
				dirs[d] = true
				if key == "same" {
					sameWins++
				}
			case key == "same" && errors.Is(err, errdefs.ErrAlreadyExists):
			default:
				errs = append(errs, fmt.Errorf("Prepare %s: %w", key, err))
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if sameWins != 1 {
		t.Errorf("%d concurrent Prepares of one key succeeded, want 1", sameWins)
	}
	if n := len(keys(t, s)); n != 1+distinct+1 {
		t.Errorf("Walk has %d snapshots, want %d", n, 1+distinct+1)
	}
	root := mount(t, s, "ctr-3")
	checkTree(t, root, map[string]string{"etc/os-release": "base"}, nil)
	// Cleanup finds nothing to remove: every directory has its record.
	if err := s.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	for d := range dirs {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("Cleanup removed a live snapshot: %v", err)
		}
	}
}

// testLongChain mounts an image of many layers: 200 through overlayfs (far
// past the one-page limit of mount(2) options); the copying driver, whose
// cost grows with the square of the chain, proves the same with fewer.
func testLongChain(t *testing.T, s snapshot.Snapshotter, _ func() snapshot.Snapshotter) {
	ctx := context.Background()
	n := 200
	if !s.OverlayWhiteouts() {
		n = 40
	}
	parent := ""
	want := map[string]string{}
	for i := range n {
		name := fmt.Sprintf("sha256:%064d", i)
		commitLayer(t, s, name, parent, layer{files: map[string]string{fmt.Sprintf("layer-%03d", i): name}})
		want[fmt.Sprintf("layer-%03d", i)] = name
		parent = name
	}
	if _, err := s.Prepare(ctx, "ctr", parent, nil); err != nil {
		t.Fatal(err)
	}
	if lowers, err := s.LowerDirs(ctx, "ctr"); err != nil || len(lowers) != n {
		t.Fatalf("LowerDirs: %d dirs, %v", len(lowers), err)
	}
	if mounts, err := s.Mounts(ctx, "ctr"); err == nil && mounts[0].Type == "overlay" {
		if l := len(strings.Join(mounts[0].Options, ",")); l <= 4096 {
			t.Errorf("overlay options are %d bytes: the test should exceed mount(2)'s page", l)
		}
	}
	checkTree(t, mount(t, s, "ctr"), want, nil)
}

// testCommitChain: links commit in order under one write; an existing name
// counts as committed (its active snapshot goes); the first other failure
// stops the chain and leaves the links before it committed, the rest
// active. On overlay a link's parent may be an earlier link of the call.
func testCommitChain(t *testing.T, s snapshot.Snapshotter, reopen func() snapshot.Snapshotter) {
	ctx := context.Background()
	commitLayer(t, s, "base", "", layer{files: map[string]string{"b": "base"}})
	prepare := func(key, parent string) {
		t.Helper()
		d, err := s.Prepare(ctx, key, parent, nil)
		if err != nil {
			t.Fatalf("Prepare %s: %v", key, err)
		}
		writeFiles(t, d, map[string]string{key: key})
	}
	prepare("k1", "base")
	prepare("kdup", "")
	prepare("k2", "base")
	n, err := s.CommitChain(ctx, []snapshot.ChainLink{
		{Name: "l1", Key: "k1", Parent: "base"},
		{Name: "base", Key: "kdup", Parent: ""},
		{Name: "l2", Key: "k2", Parent: "no-such-parent"},
	})
	wantErr(t, "link with a missing parent", err, errdefs.ErrNotFound)
	if n != 2 {
		t.Errorf("CommitChain committed %d links, want 2 (l1, and base which existed)", n)
	}
	s = reopen() // what was committed is on disk
	for key, want := range map[string]snapshot.Kind{"l1": snapshot.KindCommitted, "base": snapshot.KindCommitted, "k2": snapshot.KindActive} {
		if info, err := s.Stat(ctx, key); err != nil || info.Kind != want {
			t.Errorf("Stat %s = %+v, %v; want kind %v", key, info, err, want)
		}
	}
	for _, key := range []string{"k1", "kdup"} {
		_, err := s.Stat(ctx, key)
		wantErr(t, "Stat of committed or dropped "+key, err, errdefs.ErrNotFound)
	}
	if n, err := s.CommitChain(ctx, []snapshot.ChainLink{{Name: "l2", Key: "k2", Parent: "base"}}); err != nil || n != 1 {
		t.Fatalf("CommitChain l2 = %d, %v", n, err)
	}
	if !s.OverlayWhiteouts() {
		return // native snapshots are prepared on committed parents only
	}
	prepare("k3", "")
	prepare("k4", "")
	if n, err := s.CommitChain(ctx, []snapshot.ChainLink{
		{Name: "l3", Key: "k3", Parent: "l2"},
		{Name: "l4", Key: "k4", Parent: "l3"},
	}); err != nil || n != 2 {
		t.Fatalf("CommitChain l3, l4 = %d, %v", n, err)
	}
	root := mount(t, s, "l4")
	checkTree(t, root, map[string]string{"b": "base", "k2": "k2", "k3": "k3", "k4": "k4"}, []string{"k1"})
}
