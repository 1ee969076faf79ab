// Package content is berth's content-addressed blob store: every manifest,
// config and layer blob lives once under <root>/blobs/sha256/<hex>, named by
// its digest and verified against it before it becomes visible.
//
// CONTRACT (implementation pending: helper "content+snapshot"). Lifecycle of
// a blob: Writer (an ingest under <root>/ingest/<digest-or-ref>, guarded by a
// cross-process lock) → Write → Commit (size and digest verified, fsync,
// rename into blobs/) or Close without Commit (ingest removed). A kill -9 at
// any instant leaves at most an ingest that the next Writer for the same
// digest (or CleanIngests) discards; a blob under blobs/ is always complete.
// Two processes writing the same digest: the second Writer waits for the
// first's lock, then returns ErrAlreadyExists if the first committed — so
// two concurrent pulls download each blob once.
package content

import (
	"context"
	"errors"
	"io"
	"os"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

var errPending = errors.New("content: not implemented yet")

// Info describes a committed blob.
type Info struct {
	Digest  digest.Digest
	Size    int64
	ModTime time.Time
}

// Store is a blob store rooted at one directory.
type Store struct{ root string }

// Open opens (creating if needed) the store at root.
func Open(root string) (*Store, error) { return nil, errPending }

// Info returns the blob's size; errdefs.ErrNotFound when absent.
func (s *Store) Info(ctx context.Context, d digest.Digest) (Info, error) { return Info{}, errPending }

// Open opens a committed blob for reading (an *os.File: ReaderAt and Seeker).
func (s *Store) Open(ctx context.Context, d digest.Digest) (*os.File, error) { return nil, errPending }

// ReadAll reads a small blob (manifest, config) whole; it refuses blobs
// larger than maxSize with errdefs.ErrInvalidArgument.
func (s *Store) ReadAll(ctx context.Context, d digest.Digest, maxSize int64) ([]byte, error) {
	return nil, errPending
}

// Writer starts an ingest. expected.Digest and expected.Size, when set, are
// verified at Commit (a Write beyond Size fails at once). When the blob is
// already committed it returns errdefs.ErrAlreadyExists. When expected.Digest
// is empty (a blob whose digest is not known in advance, e.g. a layer being
// compressed), ref names the ingest and Commit computes the digest.
func (s *Store) Writer(ctx context.Context, ref string, expected ocispec.Descriptor) (*Writer, error) {
	return nil, errPending
}

// WriteBlob copies r into the store under desc and commits; an existing blob
// is success. A digest or size mismatch stores nothing.
func (s *Store) WriteBlob(ctx context.Context, desc ocispec.Descriptor, r io.Reader) error {
	return errPending
}

// Delete removes a committed blob (ErrNotFound when absent).
func (s *Store) Delete(ctx context.Context, d digest.Digest) error { return errPending }

// Walk calls fn for every committed blob.
func (s *Store) Walk(ctx context.Context, fn func(Info) error) error { return errPending }

// CleanIngests removes ingests that no live process holds (crash leftovers).
func (s *Store) CleanIngests(ctx context.Context) error { return errPending }

// Writer is one ingest in progress. Not safe for concurrent use.
type Writer struct{}

func (w *Writer) Write(p []byte) (int, error) { return 0, errPending }

// Commit verifies size and digest, makes the blob durable and visible, and
// releases the ingest. It returns the blob's descriptor (Digest and Size).
// A mismatch returns an error wrapping errdefs.ErrInvalidArgument and stores
// nothing.
func (w *Writer) Commit(ctx context.Context) (ocispec.Descriptor, error) {
	return ocispec.Descriptor{}, errPending
}

// Close abandons an uncommitted ingest (removing it) or is a no-op after Commit.
func (w *Writer) Close() error { return errPending }
