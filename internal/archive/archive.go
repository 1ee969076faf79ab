// Package archive reads and writes image layers (tar streams, optionally
// compressed) and applies them to directories without ever writing outside.
//
// CONTRACT (implementation pending: helper "archive").
package archive

import (
	"context"
	"errors"
	"io"
)

var errPending = errors.New("archive: not implemented yet")

// WhiteoutFormat says how Apply represents a layer's deletions.
type WhiteoutFormat int

const (
	// WhiteoutsOverlay writes `.wh.NAME` as a 0/0 character device NAME and
	// `.wh..wh..opq` as the trusted.overlay.opaque=y xattr on the directory:
	// the layer directory is one overlayfs lowerdir.
	WhiteoutsOverlay WhiteoutFormat = iota
	// WhiteoutsApply deletes NAME (and empties opaque directories) in dir,
	// which holds the parent layers' content (the native snapshotter).
	WhiteoutsApply
)

// ApplyOptions tune Apply.
type ApplyOptions struct {
	Whiteouts WhiteoutFormat
	// MaxBytes bounds the uncompressed bytes read (a decompression bomb is
	// an error, not a full disk). 0 means the default (64 GiB).
	MaxBytes int64
}

// Apply extracts the uncompressed tar stream r into dir and returns the
// number of tar bytes read. Entries are resolved inside dir (no `..`, no
// absolute paths, no symlink followed out, no hardlink to outside); an entry
// that would escape is an error wrapping errdefs.ErrInvalidArgument naming
// the entry. Ownership, modes, mtimes, xattrs, device nodes, hardlinks and
// symlinks come out as the tar says.
func Apply(ctx context.Context, dir string, r io.Reader, opts ApplyOptions) (int64, error) {
	return 0, errPending
}

// Compression of a layer blob.
type Compression int

const (
	Uncompressed Compression = iota
	Gzip
	Zstd
)

// Decompress sniffs r's magic bytes and returns the uncompressed stream.
func Decompress(r io.Reader) (io.ReadCloser, Compression, error) { return nil, 0, errPending }

// Compress returns a writer that compresses into w (Uncompressed passes through).
func Compress(w io.Writer, c Compression) (io.WriteCloser, error) { return nil, errPending }

// Diff writes, as an uncompressed OCI layer tar, the changes recorded in an
// overlayfs upper directory (0/0 character devices become `.wh.` entries,
// opaque directories get `.wh..wh..opq`). lowers (top first) let it resolve
// hardlinks and decide what a whiteout hides. Used by commit and build.
func Diff(ctx context.Context, w io.Writer, upper string, lowers []string) error { return errPending }

// TarOptions tune Tar.
type TarOptions struct {
	// Prefix is prepended to every entry name ("" = entries relative to dir).
	Prefix string
}

// Tar writes the tree under dir as an uncompressed tar (export, import, cp).
// It never follows symlinks.
func Tar(ctx context.Context, w io.Writer, dir string, opts TarOptions) error { return errPending }
