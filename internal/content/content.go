// Package content is berth's content-addressed blob store: every manifest,
// config and layer blob lives once under <root>/blobs/sha256/<hex>, named by
// its digest and verified against it before it becomes visible.
//
// Lifecycle of a blob: Writer (an ingest under <root>/ingest/<digest-or-ref>,
// guarded by a cross-process lock) → Write → Commit (size and digest
// verified, fsync, rename into blobs/) or Close without Commit (ingest
// removed). CommitUnsynced skips the fsync for a caller that keeps its own
// record of what is not durable yet (a pull: see CommitUnsynced and package
// image); a blob under blobs/ is then complete for every reader in this
// boot, and the caller discards it after a power loss. A kill -9 at any instant leaves at most an ingest that the next
// Writer for the same digest (or CleanIngests) discards; a blob under blobs/
// is always complete. Two processes writing the same digest: the second
// Writer waits for the first's lock, then returns ErrAlreadyExists if the
// first committed — so two concurrent pulls download each blob once.
package content

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Info describes a committed blob.
type Info struct {
	Digest  digest.Digest
	Size    int64
	ModTime time.Time
}

// Store is a blob store rooted at one directory.
type Store struct{ root string }

// Open opens (creating if needed) the store at root.
func Open(root string) (*Store, error) {
	s := &Store{root: root}
	for _, dir := range []string{s.blobDir(), s.ingestRoot()} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("open content store: %w", err)
		}
	}
	return s, nil
}

// Root is the directory the store lives in (to flush its filesystem).
func (s *Store) Root() string { return s.root }

func (s *Store) blobDir() string    { return filepath.Join(s.root, "blobs", string(digest.SHA256)) }
func (s *Store) ingestRoot() string { return filepath.Join(s.root, "ingest") }

// blobPath validates d and returns where its blob lives. Only sha256 is
// stored: it is what every registry and OCI layout uses, and one algorithm
// keeps one name per blob.
func (s *Store) blobPath(d digest.Digest) (string, error) {
	if err := d.Validate(); err != nil {
		return "", fmt.Errorf("digest %q: %v: %w", d, err, errdefs.ErrInvalidArgument)
	}
	if d.Algorithm() != digest.SHA256 {
		return "", fmt.Errorf("digest %s: algorithm %s: %w", d, d.Algorithm(), errdefs.ErrNotSupported)
	}
	return filepath.Join(s.blobDir(), d.Encoded()), nil
}

// Info returns the blob's size; errdefs.ErrNotFound when absent.
func (s *Store) Info(ctx context.Context, d digest.Digest) (Info, error) {
	p, err := s.blobPath(d)
	if err != nil {
		return Info{}, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Info{}, fmt.Errorf("blob %s: %w", d, errdefs.ErrNotFound)
		}
		return Info{}, fmt.Errorf("blob %s: %w", d, err)
	}
	return Info{Digest: d, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// Open opens a committed blob for reading (an *os.File: ReaderAt and Seeker).
func (s *Store) Open(ctx context.Context, d digest.Digest) (*os.File, error) {
	p, err := s.blobPath(d)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("blob %s: %w", d, errdefs.ErrNotFound)
		}
		return nil, fmt.Errorf("blob %s: %w", d, err)
	}
	return f, nil
}

// ReadAll reads a small blob (manifest, config) whole; it refuses blobs
// larger than maxSize with errdefs.ErrInvalidArgument. The bytes are checked
// against d once more: small blobs are cheap to hash, and a manifest is what
// every later verification trusts.
func (s *Store) ReadAll(ctx context.Context, d digest.Digest, maxSize int64) ([]byte, error) {
	f, err := s.Open(ctx, d)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", d, err)
	}
	if fi.Size() > maxSize {
		return nil, fmt.Errorf("blob %s: size %d exceeds limit %d: %w", d, fi.Size(), maxSize, errdefs.ErrInvalidArgument)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSize+1))
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", d, err)
	}
	if got := d.Algorithm().FromBytes(b); got != d {
		return nil, fmt.Errorf("blob %s is corrupt: digest mismatch: expected %s, got %s: %w", d, d, got, errdefs.ErrInvalidArgument)
	}
	return b, nil
}

// WriteBlob copies r into the store under desc and commits; an existing blob
// is success. A digest or size mismatch stores nothing.
func (s *Store) WriteBlob(ctx context.Context, desc ocispec.Descriptor, r io.Reader) error {
	w, err := s.Writer(ctx, "", desc)
	if err != nil {
		if errdefs.IsAlreadyExists(err) {
			return nil
		}
		return err
	}
	defer w.Close()
	if err := copyContext(ctx, w, r); err != nil {
		return fmt.Errorf("write blob %s: %w", desc.Digest, err)
	}
	_, err = w.Commit(ctx)
	return err
}

// copyContext is io.Copy that notices cancellation between chunks, so a
// stalled pull can be interrupted even when r ignores ctx.
func copyContext(ctx context.Context, w io.Writer, r io.Reader) error {
	buf := make([]byte, 1<<20)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, rerr := r.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return err
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// Delete removes a committed blob (ErrNotFound when absent).
func (s *Store) Delete(ctx context.Context, d digest.Digest) error {
	p, err := s.blobPath(d)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("delete blob %s: %w", d, errdefs.ErrNotFound)
		}
		return fmt.Errorf("delete blob %s: %w", d, err)
	}
	return nil
}

// Walk calls fn for every committed blob. Names that are not a sha256 hex
// digest (nothing berth writes) are skipped rather than reported.
func (s *Store) Walk(ctx context.Context, fn func(Info) error) error {
	entries, err := os.ReadDir(s.blobDir())
	if err != nil {
		return fmt.Errorf("walk blobs: %w", err)
	}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		d := digest.NewDigestFromEncoded(digest.SHA256, e.Name())
		if d.Validate() != nil || !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) { // deleted while walking
				continue
			}
			return fmt.Errorf("walk blobs: %w", err)
		}
		if err := fn(Info{Digest: d, Size: fi.Size(), ModTime: fi.ModTime()}); err != nil {
			return err
		}
	}
	return nil
}

// CleanIngests removes ingests that no live process holds (crash leftovers).
// An ingest whose lock is held is in progress and left alone.
func (s *Store) CleanIngests(ctx context.Context) error {
	entries, err := os.ReadDir(s.ingestRoot())
	if err != nil {
		return fmt.Errorf("clean ingests: %w", err)
	}
	var errs []error
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := s.cleanIngest(filepath.Join(s.ingestRoot(), e.Name())); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("clean ingests: %w", err)
	}
	return nil
}

func (s *Store) cleanIngest(dir string) error {
	l, err := tryLockIngest(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			// A kill between mkdir and creating the lock leaves an empty
			// directory. rmdir (never RemoveAll) cannot race with a writer
			// that is just creating its lock: a non-empty dir stays.
			if rerr := os.Remove(dir); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) && !isNotEmpty(rerr) {
				return rerr
			}
			return nil
		}
		if errors.Is(err, errLocked) {
			return nil
		}
		return err
	}
	return l.removeAndUnlock()
}

// isNotEmpty reports rmdir's "directory not empty" (EEXIST on some
// filesystems, as POSIX allows).
func isNotEmpty(err error) bool {
	return errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST)
}
