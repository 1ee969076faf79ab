// Package archive reads and writes image layers (tar streams, optionally
// compressed) and applies them to directories without ever writing outside.
//
// Apply resolves every entry with openat2(2) RESOLVE_IN_ROOT relative to the
// target directory, so a symlink planted by an earlier entry (or an earlier
// layer) is followed inside the directory, never out of it, and the final
// path component is always created by *at calls that do not follow it.
//
// Decompression is in process (klauspost's gzip and zstd) except for big
// gzip layers that compress: DecompressLayer hands those to igzip (ISA-L)
// in a child process when it is installed, as containerd does, because
// inflate is most of the CPU a pull spends. The child only inflates; the
// caller verifies every byte, and without igzip nothing changes but speed.
package archive

import (
	"context"
	"io"
)

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
	// NoWriteback leaves big files' dirty pages to the kernel's own
	// writeback. By default Apply asks for writeback of every 8 MiB of a
	// big file as it goes (sync_file_range), so that a SyncDir right after
	// finds little left to write; a caller that flushes later, or never
	// (package image: pulls are flushed in the background), saves that
	// work on the way.
	NoWriteback bool
}

// Apply extracts the uncompressed tar stream r into dir and returns the
// number of tar bytes read. Entries are resolved inside dir (no `..`, no
// absolute paths, no symlink followed out, no hardlink to outside); an entry
// that would escape is an error wrapping errdefs.ErrInvalidArgument naming
// the entry. Ownership, modes, mtimes, xattrs, device nodes, hardlinks and
// symlinks come out as the tar says.
//
// Names are cleaned; absolute names are made relative to dir (as Docker
// does); names that still climb out ("../x") are rejected. An entry replaces
// what dir already holds at its path, except that a directory entry over an
// existing directory keeps its content. Whiteouts hide only what parent
// layers hold, never an entry of the same layer (OCI image spec), wherever
// the marker sits in the stream. overlayfs bookkeeping xattrs
// (trusted.overlay.*, user.overlay.*) in a tar are dropped: a layer must not
// steer overlayfs lookups. Nothing is fsynced: call SyncDir once when the
// whole snapshot is written. dir is marked as the top of a directory
// hierarchy (chattr +T) where the filesystem supports it, so that ext4
// spreads the layer's directories over free block groups (see
// markHierarchyTop for why that makes file creation several times cheaper).
func Apply(ctx context.Context, dir string, r io.Reader, opts ApplyOptions) (int64, error) {
	return apply(ctx, dir, r, opts)
}

// SyncDir flushes the filesystem holding dir to stable storage with one
// syncfs(2), which is far cheaper than an fsync per extracted file.
func SyncDir(dir string) error { return syncDir(dir) }

// Compression of a layer blob.
type Compression int

const (
	Uncompressed Compression = iota
	Gzip
	Zstd
)

// Diff writes, as an uncompressed OCI layer tar, the changes recorded in an
// overlayfs upper directory (0/0 character devices become `.wh.` entries,
// opaque directories get `.wh..wh..opq`). lowers (top first) let it resolve
// hardlinks and decide what a whiteout hides. Used by commit and build.
//
// Entries come in lexical path order with a directory before its content, so
// the same upper directory always gives the same bytes (and the same DiffID).
func Diff(ctx context.Context, w io.Writer, upper string, lowers []string) error {
	return diff(ctx, w, upper, lowers)
}

// TarOptions tune Tar.
type TarOptions struct {
	// Prefix is prepended to every entry name ("" = entries relative to dir).
	Prefix string
}

// Tar writes the tree under dir as an uncompressed tar (export, import, cp).
// It never follows symlinks.
// Entries come in lexical path order; files that share an inode are written
// once and then as hardlinks to the first name.
func Tar(ctx context.Context, w io.Writer, dir string, opts TarOptions) error {
	return tarTree(ctx, w, dir, opts)
}
