package content

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func newStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func descOf(b []byte) ocispec.Descriptor {
	return ocispec.Descriptor{Digest: digest.FromBytes(b), Size: int64(len(b))}
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// ingestsLeft lists the ingest directories; after any finished operation
// there must be none.
func ingestsLeft(t *testing.T, s *Store) []string {
	t.Helper()
	entries, err := os.ReadDir(s.ingestRoot())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestWriteReadDelete(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	blob := []byte(`{"schemaVersion":2}`)
	desc := descOf(blob)
	if err := s.WriteBlob(ctx, desc, bytes.NewReader(blob)); err != nil {
		t.Fatal(err)
	}
	// Writing it again is success, and Writer reports the existing blob.
	if err := s.WriteBlob(ctx, desc, bytes.NewReader(blob)); err != nil {
		t.Fatalf("second WriteBlob: %v", err)
	}
	if _, err := s.Writer(ctx, "", desc); !errdefs.IsAlreadyExists(err) {
		t.Fatalf("Writer on committed blob: got %v, want ErrAlreadyExists", err)
	}
	info, err := s.Info(ctx, desc.Digest)
	if err != nil || info.Size != desc.Size || info.Digest != desc.Digest {
		t.Fatalf("Info = %+v, %v", info, err)
	}
	got, err := s.ReadAll(ctx, desc.Digest, 1024)
	if err != nil || !bytes.Equal(got, blob) {
		t.Fatalf("ReadAll = %q, %v", got, err)
	}
	if _, err := s.ReadAll(ctx, desc.Digest, 4); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("ReadAll over limit: got %v, want ErrInvalidArgument", err)
	}
	var walked []digest.Digest
	if err := s.Walk(ctx, func(i Info) error { walked = append(walked, i.Digest); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(walked) != 1 || walked[0] != desc.Digest {
		t.Fatalf("Walk = %v", walked)
	}
	if err := s.Delete(ctx, desc.Digest); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"Info":   func() error { _, err := s.Info(ctx, desc.Digest); return err }(),
		"Open":   func() error { _, err := s.Open(ctx, desc.Digest); return err }(),
		"Delete": s.Delete(ctx, desc.Digest),
	} {
		if !errdefs.IsNotFound(err) {
			t.Errorf("%s after delete: got %v, want ErrNotFound", name, err)
		}
	}
	if left := ingestsLeft(t, s); len(left) != 0 {
		t.Errorf("ingests left behind: %v", left)
	}
}

func TestCommitWithoutKnownDigest(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	blob := randomBytes(t, 3<<20)
	w, err := s.Writer(ctx, "layer-being-compressed/1", ocispec.Descriptor{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(w, bytes.NewReader(blob)); err != nil {
		t.Fatal(err)
	}
	desc, err := w.Commit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if desc.Digest != digest.FromBytes(blob) || desc.Size != int64(len(blob)) {
		t.Fatalf("Commit = %+v", desc)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close after Commit: %v", err)
	}
	f, err := s.Open(ctx, desc.Digest)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got, _ := io.ReadAll(f); !bytes.Equal(got, blob) {
		t.Fatal("blob content differs")
	}
}

func TestMismatch(t *testing.T) {
	ctx := context.Background()
	blob := []byte("hello, layer")
	tests := []struct {
		name     string
		desc     ocispec.Descriptor
		data     []byte
		wantMsg  string
		failOnWr bool
	}{
		{name: "digest", desc: descOf([]byte("hello, LAYER")), data: blob, wantMsg: "digest mismatch: expected " + string(digest.FromBytes([]byte("hello, LAYER"))) + ", got " + string(digest.FromBytes(blob))},
		{name: "short", desc: ocispec.Descriptor{Digest: digest.FromBytes(blob), Size: int64(len(blob)) + 1}, data: blob, wantMsg: "size mismatch"},
		{name: "too long", desc: ocispec.Descriptor{Digest: digest.FromBytes(blob), Size: 5}, data: blob, wantMsg: "exceed expected size", failOnWr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			w, err := s.Writer(ctx, "", tc.desc)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			_, werr := w.Write(tc.data)
			if tc.failOnWr {
				if !errdefs.IsInvalidArgument(werr) || !strings.Contains(werr.Error(), tc.wantMsg) {
					t.Fatalf("Write: got %v, want ErrInvalidArgument %q", werr, tc.wantMsg)
				}
			} else {
				if werr != nil {
					t.Fatal(werr)
				}
				_, err := w.Commit(ctx)
				if !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), tc.wantMsg) {
					t.Fatalf("Commit: got %v, want ErrInvalidArgument %q", err, tc.wantMsg)
				}
			}
			w.Close()
			// WriteBlob reports the same and stores nothing.
			if err := s.WriteBlob(ctx, tc.desc, bytes.NewReader(tc.data)); !errdefs.IsInvalidArgument(err) {
				t.Fatalf("WriteBlob: got %v, want ErrInvalidArgument", err)
			}
			n := 0
			_ = s.Walk(ctx, func(Info) error { n++; return nil })
			if n != 0 {
				t.Errorf("%d blobs stored after a mismatch", n)
			}
			if _, err := os.Stat(filepath.Join(s.blobDir(), digest.FromBytes(tc.data).Encoded())); err == nil {
				t.Error("the mismatching data was stored under its real digest")
			}
			if left := ingestsLeft(t, s); len(left) != 0 {
				t.Errorf("ingests left behind: %v", left)
			}
		})
	}
}

func TestInvalidDigest(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	for _, d := range []digest.Digest{"sha256:xyz", "nonsense", "sha256:../../etc/passwd"} {
		if _, err := s.Info(ctx, d); !errdefs.IsInvalidArgument(err) {
			t.Errorf("Info(%q): got %v, want ErrInvalidArgument", d, err)
		}
		if _, err := s.Writer(ctx, "", ocispec.Descriptor{Digest: d}); !errdefs.IsInvalidArgument(err) {
			t.Errorf("Writer(%q): got %v, want ErrInvalidArgument", d, err)
		}
	}
}

// countingReader counts how many readers were actually consumed, i.e. how
// many "downloads" happened.
type countingReader struct {
	r     io.Reader
	reads *atomic.Int32
	once  sync.Once
	slow  time.Duration
}

func (c *countingReader) Read(p []byte) (int, error) {
	c.once.Do(func() { c.reads.Add(1) })
	time.Sleep(c.slow)
	if len(p) > 64<<10 {
		p = p[:64<<10]
	}
	return c.r.Read(p)
}

func TestConcurrentWritersDownloadOnce(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	blob := randomBytes(t, 1<<20)
	desc := descOf(blob)
	var reads atomic.Int32
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each goroutine opens its own lock file, so this exercises
			// flock between open file descriptions as two processes would.
			r := &countingReader{r: bytes.NewReader(blob), reads: &reads, slow: time.Millisecond}
			errs[i] = s.WriteBlob(ctx, desc, r)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("writer %d: %v", i, err)
		}
	}
	if n := reads.Load(); n != 1 {
		t.Errorf("blob was downloaded %d times, want once", n)
	}
	if got, err := s.ReadAll(ctx, desc.Digest, 2<<20); err != nil || !bytes.Equal(got, blob) {
		t.Errorf("ReadAll: %v", err)
	}
	if left := ingestsLeft(t, s); len(left) != 0 {
		t.Errorf("ingests left behind: %v", left)
	}
}

func TestWriterWaitHonoursContext(t *testing.T) {
	s := newStore(t)
	blob := []byte("held")
	w, err := s.Writer(context.Background(), "", descOf(blob))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := s.Writer(ctx, "", descOf(blob)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second Writer: got %v, want DeadlineExceeded", err)
	}
	// A held ingest survives CleanIngests; an abandoned one does not.
	if err := s.CleanIngests(context.Background()); err != nil {
		t.Fatal(err)
	}
	if left := ingestsLeft(t, s); len(left) != 1 {
		t.Fatalf("CleanIngests removed a live ingest: %v", left)
	}
}

func TestCleanIngests(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name  string
		setup func(t *testing.T, s *Store) (cleanup func())
		left  int
	}{
		{"killed before creating the lock", func(t *testing.T, s *Store) func() {
			if err := os.Mkdir(filepath.Join(s.ingestRoot(), "sha256-abc"), 0o700); err != nil {
				t.Fatal(err)
			}
			return func() {}
		}, 0},
		{"killed while writing", func(t *testing.T, s *Store) func() {
			dir := filepath.Join(s.ingestRoot(), "ref-x")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			for _, f := range []string{"lock", "data"} {
				if err := os.WriteFile(filepath.Join(dir, f), []byte("partial"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			return func() {}
		}, 0},
		{"live writer", func(t *testing.T, s *Store) func() {
			w, err := s.Writer(ctx, "compressing", ocispec.Descriptor{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write([]byte("in progress")); err != nil {
				t.Fatal(err)
			}
			return func() { w.Close() }
		}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			defer tc.setup(t, s)()
			if err := s.CleanIngests(ctx); err != nil {
				t.Fatal(err)
			}
			if left := ingestsLeft(t, s); len(left) != tc.left {
				t.Errorf("after CleanIngests: %v, want %d left", left, tc.left)
			}
		})
	}
}
