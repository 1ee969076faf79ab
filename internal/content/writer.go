package content

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/internal/atomicfile"
	"github.com/berth-dev/berth/internal/diskhint"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Writer is one ingest in progress. Not safe for concurrent use.
type Writer struct {
	s        *Store
	expected ocispec.Descriptor
	lock     *ingestLock
	data     *os.File
	hash     hash.Hash
	written  int64
	flushed  int64 // bytes handed to diskhint.StartWriteback so far
	lazy     bool  // no writeback hints (SkipWriteback)
	done     bool
}

// SkipWriteback stops the writer from asking the kernel to write its data
// out as it arrives (sync_file_range every 8 MiB, which makes Commit's
// fsync short). For a blob committed with CommitUnsynced, nothing waits for
// that data to reach the disk: the kernel's own writeback, or the caller's
// later flush, does it without costing the writer.
func (w *Writer) SkipWriteback() { w.lazy = true }

// writebackChunk is how much written data is left dirty before the
// kernel is asked to start writing it out.
const writebackChunk = 8 << 20

// ingestKey names the ingest directory. A known digest names it, so every
// writer of one blob (in any process) meets at the same lock; otherwise the
// caller's ref does, hashed so that any string is a safe single path element.
func ingestKey(ref string, expected ocispec.Descriptor) string {
	if expected.Digest != "" {
		return expected.Digest.Algorithm().String() + "-" + expected.Digest.Encoded()
	}
	sum := sha256.Sum256([]byte(ref))
	return "ref-" + hex.EncodeToString(sum[:])
}

// Writer starts an ingest. expected.Digest and expected.Size, when set, are
// verified at Commit (a Write beyond Size fails at once). When the blob is
// already committed it returns errdefs.ErrAlreadyExists. When expected.Digest
// is empty (a blob whose digest is not known in advance, e.g. a layer being
// compressed), ref names the ingest and Commit computes the digest.
//
// When another writer (goroutine or process) holds the same ingest, Writer
// waits for it, honouring ctx; if that writer committed, the result is
// ErrAlreadyExists, and if it died, its partial data is discarded.
func (s *Store) Writer(ctx context.Context, ref string, expected ocispec.Descriptor) (*Writer, error) {
	if expected.Size < 0 {
		return nil, fmt.Errorf("ingest %s: negative size %d: %w", expected.Digest, expected.Size, errdefs.ErrInvalidArgument)
	}
	if expected.Digest == "" && ref == "" {
		return nil, fmt.Errorf("ingest: neither digest nor ref given: %w", errdefs.ErrInvalidArgument)
	}
	var target string
	if expected.Digest != "" {
		p, err := s.blobPath(expected.Digest)
		if err != nil {
			return nil, fmt.Errorf("ingest: %w", err)
		}
		target = p
		if exists(target) { // fast path: no lock needed to see a committed blob
			return nil, fmt.Errorf("blob %s: %w", expected.Digest, errdefs.ErrAlreadyExists)
		}
	}
	dir := filepath.Join(s.ingestRoot(), ingestKey(ref, expected))
	l, err := lockIngest(ctx, dir)
	if err != nil {
		return nil, fmt.Errorf("ingest %s: %w", dir, err)
	}
	// The previous holder may have committed while we waited.
	if target != "" && exists(target) {
		_ = l.removeAndUnlock()
		return nil, fmt.Errorf("blob %s: %w", expected.Digest, errdefs.ErrAlreadyExists)
	}
	// O_TRUNC: whatever a dead holder left behind is not trusted.
	f, err := os.OpenFile(filepath.Join(dir, "data"), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		_ = l.removeAndUnlock()
		return nil, fmt.Errorf("ingest %s: %w", dir, err)
	}
	diskhint.Preallocate(int(f.Fd()), expected.Size)
	return &Writer{s: s, expected: expected, lock: l, data: f, hash: sha256.New()}, nil
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// Write appends p to the ingest. Data beyond the expected size is refused
// before it is written: a server sending too much is caught at once, not
// after downloading the excess.
func (w *Writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, fmt.Errorf("write ingest %s: writer is finished: %w", w.expected.Digest, errdefs.ErrConflict)
	}
	if w.expected.Size > 0 && w.written+int64(len(p)) > w.expected.Size {
		return 0, fmt.Errorf("write ingest %s: %d bytes exceed expected size %d: %w",
			w.expected.Digest, w.written+int64(len(p)), w.expected.Size, errdefs.ErrInvalidArgument)
	}
	n, err := w.data.Write(p)
	w.hash.Write(p[:n])
	w.written += int64(n)
	if err != nil {
		return n, fmt.Errorf("write ingest %s: %w", w.expected.Digest, err)
	}
	if !w.lazy && w.written-w.flushed >= writebackChunk {
		diskhint.StartWriteback(int(w.data.Fd()), w.flushed, w.written-w.flushed)
		w.flushed = w.written
	}
	return n, nil
}

// Commit verifies size and digest, makes the blob durable and visible, and
// releases the ingest. It returns the blob's descriptor (Digest and Size).
// A mismatch returns an error wrapping errdefs.ErrInvalidArgument and stores
// nothing. The Writer is finished afterwards whatever the outcome.
func (w *Writer) Commit(ctx context.Context) (ocispec.Descriptor, error) {
	if w.done {
		return ocispec.Descriptor{}, fmt.Errorf("commit ingest %s: writer is finished: %w", w.expected.Digest, errdefs.ErrConflict)
	}
	desc, err := w.commit(ctx, true)
	if err != nil {
		_ = w.Close()
		return ocispec.Descriptor{}, err
	}
	return desc, nil
}

// CommitUnsynced is Commit without the flush: the blob is renamed into the
// store with its data (and the rename) possibly still in the page cache.
// That is exact against kill -9 (the page cache belongs to the kernel, so
// every later reader in this boot sees the whole blob under its name) but
// not against power loss, which can leave the name over missing bytes. The
// caller takes that over: before calling it, it must durably record the
// blob as unsynced in this boot, discard it in a later boot that finds the
// record, and clear the record only after a flush of the filesystem
// (package image keeps such a ledger for a pull). It saves the fsync of a
// layer's data, the one write a pull would otherwise wait for.
func (w *Writer) CommitUnsynced(ctx context.Context) (ocispec.Descriptor, error) {
	if w.done {
		return ocispec.Descriptor{}, fmt.Errorf("commit ingest %s: writer is finished: %w", w.expected.Digest, errdefs.ErrConflict)
	}
	desc, err := w.commit(ctx, false)
	if err != nil {
		_ = w.Close()
		return ocispec.Descriptor{}, err
	}
	return desc, nil
}

func (w *Writer) commit(ctx context.Context, durable bool) (ocispec.Descriptor, error) {
	if err := ctx.Err(); err != nil {
		return ocispec.Descriptor{}, err
	}
	if w.expected.Size > 0 && w.written != w.expected.Size {
		return ocispec.Descriptor{}, fmt.Errorf("commit %s: size mismatch: expected %d, got %d: %w",
			w.expected.Digest, w.expected.Size, w.written, errdefs.ErrInvalidArgument)
	}
	got := digest.NewDigest(digest.SHA256, w.hash)
	if w.expected.Digest != "" && got != w.expected.Digest {
		return ocispec.Descriptor{}, fmt.Errorf("commit: digest mismatch: expected %s, got %s: %w",
			w.expected.Digest, got, errdefs.ErrInvalidArgument)
	}
	// Data must be on disk before the rename makes it visible under its
	// name; otherwise a power loss could leave a named blob with holes.
	if durable {
		if err := w.data.Sync(); err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("commit %s: fsync: %w", got, err)
		}
	}
	target, err := w.s.blobPath(got)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	// rename(2) replaces a blob that appeared meanwhile (possible only for
	// ref-named ingests): same digest, same bytes, so either copy is right.
	if err := os.Rename(w.data.Name(), target); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("commit %s: %w", got, err)
	}
	// The directory fsync makes the rename itself durable.
	if durable {
		if err := atomicfile.SyncDir(w.s.blobDir()); err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("commit %s: %w", got, err)
		}
	}
	w.done = true
	_ = w.data.Close()
	// The blob is committed; an ingest left by a failed removal is
	// CleanIngests' job, not the caller's problem.
	_ = w.lock.removeAndUnlock()
	return ocispec.Descriptor{MediaType: w.expected.MediaType, Digest: got, Size: w.written}, nil
}

// Close abandons an uncommitted ingest (removing it) or is a no-op after Commit.
func (w *Writer) Close() error {
	if w.done {
		return nil
	}
	w.done = true
	cerr := w.data.Close()
	if err := w.lock.removeAndUnlock(); err != nil {
		return fmt.Errorf("close ingest: %w", err)
	}
	if cerr != nil && !errors.Is(cerr, fs.ErrClosed) {
		return fmt.Errorf("close ingest: %w", cerr)
	}
	return nil
}
