package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
)

// TestNameIndex: names stay unique through the index, and the records
// stay the truth when the index is missing, stale or torn.
func TestNameIndex(t *testing.T) {
	id := func(n byte) string { return strings.Repeat(string('a'+n), 64) }
	tests := []struct {
		name     string
		setup    func(t *testing.T, e *Engine)
		add      string // name of a new container
		wantErr  error
		lookupOK string // a name that must resolve after add
	}{
		{name: "free name", add: "web", lookupOK: "web"},
		{name: "taken", setup: func(t *testing.T, e *Engine) { mustAdd(t, e, id(1), "web") }, add: "web", wantErr: errdefs.ErrConflict},
		{name: "taken in a store from before the index", setup: func(t *testing.T, e *Engine) {
			mustStore(t, e, id(1), "web") // record only, no claim, no index
		}, add: "web", wantErr: errdefs.ErrConflict},
		{name: "stale claim of a removed container", setup: func(t *testing.T, e *Engine) {
			mustAdd(t, e, id(1), "web")
			if err := os.RemoveAll(e.recordDir(id(1))); err != nil {
				t.Fatal(err)
			}
		}, add: "web", lookupOK: "web"},
		{name: "stale claim of a renamed container", setup: func(t *testing.T, e *Engine) {
			mustAdd(t, e, id(1), "web")
			mustStore(t, e, id(1), "api") // a rename killed before it released the claim
		}, add: "web", lookupOK: "api"},
		{name: "torn claim, name taken per the records", setup: func(t *testing.T, e *Engine) {
			mustAdd(t, e, id(1), "web")
			if err := os.WriteFile(e.nameClaim("web"), nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}, add: "web", wantErr: errdefs.ErrConflict},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := &Engine{opts: Options{Root: t.TempDir()}}
			if tc.setup != nil {
				tc.setup(t, e)
			}
			err := e.addContainer(&Container{ID: id(9), Name: tc.add})
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("add %q: %v, want a conflict", tc.add, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("add %q: %v", tc.add, err)
			}
			if tc.lookupOK != "" {
				if _, err := e.lookupContainer(tc.lookupOK); err != nil {
					t.Errorf("lookup %q: %v", tc.lookupOK, err)
				}
			}
			c, err := e.lookupContainer(tc.add)
			if err != nil || c.ID != id(9) {
				t.Fatalf("lookup %q: %+v, %v; want the new container", tc.add, c, err)
			}
		})
	}
}

// TestRenameMovesTheClaim: after a rename the old name is free and the
// new one taken.
func TestRenameMovesTheClaim(t *testing.T) {
	e := &Engine{opts: Options{Root: t.TempDir()}}
	a, b := strings.Repeat("a", 64), strings.Repeat("b", 64)
	mustAdd(t, e, a, "one")
	mustAdd(t, e, b, "two")
	ctx := context.Background()
	if err := e.Rename(ctx, "one", "two"); !errdefs.IsConflict(err) {
		t.Fatalf("rename onto a taken name: %v, want a conflict", err)
	}
	if err := e.Rename(ctx, "one", "three"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.lookupContainer("one"); !errdefs.IsNotFound(err) {
		t.Errorf("old name still resolves: %v", err)
	}
	if c, err := e.lookupContainer("three"); err != nil || c.ID != a {
		t.Errorf("new name: %+v, %v", c, err)
	}
	mustAdd(t, e, strings.Repeat("c", 64), "one") // free again
	if _, err := os.Stat(filepath.Join(e.namesDir(), "one")); err != nil {
		t.Errorf("claim of the reused name: %v", err)
	}
}

func mustAdd(t *testing.T, e *Engine, id, name string) {
	t.Helper()
	if err := e.addContainer(&Container{ID: id, Name: name}); err != nil {
		t.Fatal(err)
	}
}

func mustStore(t *testing.T, e *Engine, id, name string) {
	t.Helper()
	if err := e.storeContainer(&Container{ID: id, Name: name}, false); err != nil {
		t.Fatal(err)
	}
}

// TestLookupFullID: a full ID resolves to its record, or to the container
// using it as a name; a removed one is NotFound without the scan, and a
// store from before the name index still falls back to the records.
func TestLookupFullID(t *testing.T) {
	a, b, gone := strings.Repeat("a", 64), strings.Repeat("b", 64), strings.Repeat("d", 64)
	tests := []struct {
		name   string
		setup  func(t *testing.T, e *Engine)
		ref    string
		wantID string // "" expects NotFound
	}{
		{name: "record", setup: func(t *testing.T, e *Engine) { mustAdd(t, e, a, "web") }, ref: a, wantID: a},
		{name: "removed", setup: func(t *testing.T, e *Engine) { mustAdd(t, e, a, "web") }, ref: gone},
		{name: "an ID as another container's name", setup: func(t *testing.T, e *Engine) { mustAdd(t, e, b, gone) }, ref: gone, wantID: b},
		{name: "name without an index", setup: func(t *testing.T, e *Engine) { mustStore(t, e, b, gone) }, ref: gone, wantID: b},
		{name: "removed, no index", setup: func(t *testing.T, e *Engine) { mustStore(t, e, a, "web") }, ref: gone},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := &Engine{opts: Options{Root: t.TempDir()}}
			tc.setup(t, e)
			c, err := e.lookupContainer(tc.ref)
			if tc.wantID == "" {
				if !errdefs.IsNotFound(err) {
					t.Fatalf("lookup %s: %+v, %v; want NotFound", tc.ref[:12], c, err)
				}
				return
			}
			if err != nil || c.ID != tc.wantID {
				t.Fatalf("lookup %s: %+v, %v; want %s", tc.ref[:12], c, err, tc.wantID[:12])
			}
		})
	}
}
