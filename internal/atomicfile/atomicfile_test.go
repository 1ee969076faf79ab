package atomicfile

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
)

func TestWrite(t *testing.T) {
	tests := []struct {
		name string
		old  []byte // nil: no file before
		data []byte
		perm os.FileMode
		opts []Option
	}{
		{name: "new file, no fsync", data: []byte("a"), perm: 0o600},
		{name: "replace, no fsync", old: []byte("old"), data: []byte("new"), perm: 0o644},
		{name: "sync file", old: []byte("old"), data: []byte("new"), perm: 0o640, opts: []Option{SyncFile}},
		{name: "durable", data: []byte(`{"k":1}`), perm: 0o600, opts: []Option{Durable}},
		{name: "strongest option wins", old: []byte("x"), data: []byte("y"), perm: 0o644, opts: []Option{Durable, SyncFile}},
		{name: "empty data", old: []byte("old"), data: []byte{}, perm: 0o600},
		// The umask (typically 022) must not strip group/other write bits.
		{name: "mode ignores umask", data: []byte("z"), perm: 0o666},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "f.json")
			if tc.old != nil {
				if err := os.WriteFile(path, tc.old, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if err := Write(path, tc.data, tc.perm, tc.opts...); err != nil {
				t.Fatalf("Write: %v", err)
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.data) {
				t.Errorf("contents = %q, want %q", got, tc.data)
			}
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != tc.perm {
				t.Errorf("mode = %v, want %v", st.Mode().Perm(), tc.perm)
			}
			assertNoTemps(t, path)
		})
	}
}

// TestWriteConcurrent checks that concurrent writers of one path each use
// their own temporary file: with a shared name one writer would rename the
// other's half-written file, or fail on its vanished temp.
func TestWriteConcurrent(t *testing.T) {
	tests := []struct {
		name string
		opts []Option
	}{
		{name: "no fsync"},
		{name: "durable", opts: []Option{Durable}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state")
			const writers = 32
			want := map[string]bool{}
			for i := range writers {
				want[payload(i)] = true
			}
			var wg sync.WaitGroup
			errs := make(chan error, writers)
			for i := range writers {
				wg.Go(func() { errs <- Write(path, []byte(payload(i)), 0o600, tc.opts...) })
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Errorf("Write: %v", err)
				}
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !want[string(got)] {
				t.Errorf("contents %q are no writer's whole payload", got)
			}
			assertNoTemps(t, path)
		})
	}
}

// payload is long enough that a torn or mixed write would show.
func payload(i int) string {
	return fmt.Sprintf("%d:%s", i, bytes.Repeat([]byte{byte('a' + i%26)}, 64<<10))
}

func TestWriteFailureKeepsOld(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, dir string) (path string)
		check   func(t *testing.T, path string)
		wantErr []error // any of these
	}{
		{
			// rename(2) of a file over a directory fails: the failure comes
			// after the temporary file is written, the step most likely to
			// leave debris.
			name: "rename over a directory",
			prepare: func(t *testing.T, dir string) string {
				p := filepath.Join(dir, "target")
				if err := os.Mkdir(p, 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(p, "old"), []byte("old"), 0o600); err != nil {
					t.Fatal(err)
				}
				return p
			},
			check: func(t *testing.T, path string) {
				if got, err := os.ReadFile(filepath.Join(path, "old")); err != nil || string(got) != "old" {
					t.Errorf("old contents = %q, %v; want \"old\"", got, err)
				}
			},
			// Linux answers EISDIR for an empty directory and EEXIST or
			// ENOTEMPTY for a non-empty one, depending on the filesystem.
			wantErr: []error{syscall.EISDIR, syscall.EEXIST, syscall.ENOTEMPTY},
		},
		{
			name: "missing directory",
			prepare: func(t *testing.T, dir string) string {
				return filepath.Join(dir, "nodir", "f")
			},
			check:   func(t *testing.T, path string) {},
			wantErr: []error{fs.ErrNotExist},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.prepare(t, t.TempDir())
			err := Write(path, []byte("new"), 0o600, Durable)
			if !slices.ContainsFunc(tc.wantErr, func(e error) bool { return errors.Is(err, e) }) {
				t.Fatalf("Write = %v, want one of %v", err, tc.wantErr)
			}
			tc.check(t, path)
			assertNoTemps(t, path)
		})
	}
}

func TestSyncDir(t *testing.T) {
	tests := []struct {
		name    string
		dir     func(t *testing.T) string
		wantErr error
	}{
		{name: "directory", dir: func(t *testing.T) string { return t.TempDir() }},
		{name: "missing", dir: func(t *testing.T) string { return filepath.Join(t.TempDir(), "gone") }, wantErr: fs.ErrNotExist},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := SyncDir(tc.dir(t))
			if tc.wantErr == nil && err != nil {
				t.Fatalf("SyncDir: %v", err)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("SyncDir = %v, want %v", err, tc.wantErr)
			}
		})
	}
}

func TestTempGlob(t *testing.T) {
	path := filepath.Join(t.TempDir(), "images.json")
	f, err := os.CreateTemp(filepath.Dir(path), tempPrefix(path))
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	for _, name := range []string{"images.json", ".other.json.tmp-1"} {
		if err := os.WriteFile(filepath.Join(filepath.Dir(path), name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	got, err := filepath.Glob(TempGlob(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != f.Name() {
		t.Errorf("TempGlob matches %q, want only %q", got, f.Name())
	}
}

// assertNoTemps fails if Write left a temporary file beside path.
func assertNoTemps(t *testing.T, path string) {
	t.Helper()
	left, err := filepath.Glob(TempGlob(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Errorf("temporary files left behind: %q", left)
	}
}
