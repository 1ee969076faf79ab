// Package snapshot manages the filesystem snapshots containers run on: one
// directory per image layer, stacked with overlayfs, plus one writable
// snapshot per container.
//
// Lifecycle, as in containerd:
//
//	Prepare(key, parent) → active snapshot: a writable directory (Dir) on top
//	    of the committed parent chain. Layers are unpacked into an active
//	    snapshot; a container's rootfs is an active snapshot.
//	Commit(name, key, parent) → the active snapshot becomes the read-only,
//	    committed snapshot `name` (image layers use the layer's chain ID).
//	Remove(key) → gone; refused (ErrConflict) while a snapshot has children.
//
// Keys and names are arbitrary strings (chain IDs like "sha256:…", container
// IDs); implementations map them to safe directory names. All mutations take
// a cross-process lock; metadata is written atomically, so a kill -9 leaves
// either the old or the new state, and Cleanup removes directories that no
// metadata references (half-prepared or half-removed snapshots).
//
// Durability: Commit makes the record durable (metadata.json is fsynced),
// not the files written into the snapshot: flushing a layer costs a
// syncfs of the whole filesystem, so the caller decides when it happens.
// Package image commits pulled layers unflushed, lists them beforehand in
// a ledger with the boot ID, and removes them in a later boot that finds
// them still listed (a power loss may have cut their files short); within
// one boot a committed snapshot is complete for every reader, since the
// page cache is the kernel's.
//
// Two implementations share one on-disk layout, <root>/<driver>/
// {metadata.json,lock,snapshots/<id>/{fs,work}}: overlay, which stacks
// committed layers with overlayfs, and native, which copies the parent tree
// into each new snapshot (for filesystems overlayfs cannot sit on). The
// shared test suite is in package snapshottest.
package snapshot

import (
	"context"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Kind says whether a snapshot can still change.
type Kind int

const (
	KindActive Kind = iota
	KindCommitted
)

// Info describes one snapshot.
type Info struct {
	Key     string
	Parent  string // committed parent's name, "" for a base layer
	Kind    Kind
	Created time.Time
	Labels  map[string]string
}

// ChainLink is one Commit of a CommitChain.
type ChainLink struct {
	Name, Key, Parent string
}

// Snapshotter is implemented by the overlay and the native (copying)
// snapshotters; both pass the shared suite in this package's tests.
type Snapshotter interface {
	// Driver is "overlay" or "native".
	Driver() string
	// OverlayWhiteouts reports whether layers must be unpacked with
	// whiteouts in overlayfs form (0/0 character devices and the
	// trusted.overlay.opaque xattr) instead of being applied as deletions.
	// It also means a layer's active snapshot starts empty whatever its
	// parent, so layers of one image can be unpacked in parallel.
	OverlayWhiteouts() bool
	Stat(ctx context.Context, key string) (Info, error)
	// Prepare creates the active snapshot key on parent ("" for none) and
	// returns the directory to write into. ErrAlreadyExists if key exists;
	// ErrNotFound if parent is not a committed snapshot.
	Prepare(ctx context.Context, key, parent string, labels map[string]string) (dir string, err error)
	// Commit turns active snapshot key into committed snapshot name with the
	// given parent (which must be committed; for the native snapshotter it
	// must be the parent given to Prepare). If name already exists, the
	// active snapshot is removed and ErrAlreadyExists returned (a concurrent
	// unpack of the same layer won; callers treat it as success).
	Commit(ctx context.Context, name, key, parent string) error
	// CommitChain commits links in order under one lock and one metadata
	// write (a pull's layers that are ready together cost one fsync, not
	// one each); a link may name an earlier link of the call as its
	// parent. A name that exists already is handled as in Commit and
	// counts as committed. It stops at the first other failure and returns
	// how many links it committed, which stay committed, with that error.
	CommitChain(ctx context.Context, links []ChainLink) (int, error)
	// Mounts returns how to mount active snapshot key as a root filesystem:
	// one overlay mount (lowerdir=parent chain, upperdir, workdir) or, for a
	// snapshot without parents or the native driver, one bind mount.
	Mounts(ctx context.Context, key string) ([]specs.Mount, error)
	// UpperDir is the directory holding an active snapshot's own changes.
	UpperDir(ctx context.Context, key string) (string, error)
	// LowerDirs lists the directories of key's committed chain, top first.
	LowerDirs(ctx context.Context, key string) ([]string, error)
	Remove(ctx context.Context, key string) error
	Walk(ctx context.Context, fn func(Info) error) error
	// Usage is the disk space the snapshot's own directory uses.
	Usage(ctx context.Context, key string) (int64, error)
	// Cleanup removes directories no snapshot record references.
	Cleanup(ctx context.Context) error
}

// New opens the snapshotter under root: overlay when the kernel and the
// filesystem under root support it, the native copier otherwise. A root that
// already holds snapshots keeps the driver that made them.
func New(root string) (Snapshotter, error) { return newDefault(root) }

// NewOverlay opens the overlay snapshotter under root; errdefs.ErrNotSupported
// when overlayfs cannot be mounted there.
func NewOverlay(root string) (Snapshotter, error) { return newOverlay(root) }

// NewNative opens the copying snapshotter under root, which works on any
// filesystem.
func NewNative(root string) (Snapshotter, error) { return newNative(root) }

// MountAll mounts mounts (as returned by Mounts) on target, in order. If one
// fails, the ones already mounted are unmounted again.
func MountAll(mounts []specs.Mount, target string) error { return mountAll(mounts, target) }

// UnmountAll unmounts target and everything below it (lazily if busy).
func UnmountAll(target string) error { return unmountAll(target) }
