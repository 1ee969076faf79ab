// Package image is berth's image store: names → manifests in the content
// store, image configs, and the pipeline that turns layer blobs into
// snapshots (fetch → verify → decompress → unpack), shared by pull, load and
// import.
//
// State lives under the store's root:
//
//	images.json  every image record and the unpacked size of every layer
//	             snapshot, rewritten atomically (temp, fsync, rename) under
//	images.lock  an exclusive flock for every read-modify-write;
//	gc.lock      held shared by every Fetch (a lease: what it writes is not
//	             referenced by an image yet) and exclusively by GC.
//
// Readers take no lock: a rename is atomic, so they see the old or the new
// file, never half of one.
//
// # Order of a pull
//
// The first layers' downloads start as soon as the manifest is parsed,
// before the config arrives (early.go); the biggest layers take the three
// download slots first and layers under 4 MiB take none (schedule.go).
// With overlay every layer unpacks into an empty snapshot of its own at
// the same time; only the commits go in chain order, and a layer that
// commits takes the verified layers directly above it along in the same
// metadata write (commits.go).
//
// # Durability of a pull
//
// kill -9 loses nothing that was written (the page cache outlives the
// process), so flushing is only about power loss, and the rule is: after a
// power loss, nothing is trusted that names data which may not have
// reached the disk. A pull names its layers without any flush on its path:
//
//  1. Before the first layer, Fetch lists the layer blobs and snapshots it
//     is about to create (those absent) in a ledger entry in images.json
//     with the boot ID (/proc/sys/kernel/random/boot_id); that small
//     write is durable (fsync) before any of them is named. The layers
//     download and unpack meanwhile: only naming one waits for it.
//  2. Blobs are renamed into the content store without fsync
//     (content.Writer.CommitUnsynced) and snapshots committed (the snapshot
//     store fsyncs its small metadata file, not the layer); the image
//     record is written last, with fsync, as before.
//  3. Two seconds after Fetch returns (at once after Flush), one syncfs(2)
//     in the background (settle) flushes the filesystems of the content
//     store and the snapshots and drops the entry. A process that exits
//     before (the CLI: a process cannot exit while a thread waits in
//     syncfs) leaves it to the next store opened in this boot at least
//     30 s later, which settles it when no Fetch is running.
//  4. A store opened in a later boot that finds an entry of an earlier one
//     (power lost before step 3) discards, under the GC lock, every image
//     using what it lists (Discarded names them; a pull fetches them
//     again), then the snapshots with everything stacked on them (a
//     container's writable layer too), then the blobs, then the entry. So
//     `images` never lists an image whose layers may be lost.
//
// Within one boot everything a pull committed is as valid as ever: the
// kernel serves the page cache to every reader. A syncfs flushes the whole
// filesystem, other processes' dirty data included (0.1–0.5 s under load
// here), which is why it runs after the pull and not per layer. Where the
// boot ID cannot be read, a pull flushes each layer (one syncfs) before
// naming it, as it did before the ledger.
package image

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/snapshot"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Image is one stored image. ID is the config digest (Docker's image ID).
type Image struct {
	ID       digest.Digest
	Names    []string           // normalized references, "docker.io/library/busybox:latest"
	Target   ocispec.Descriptor // the platform manifest
	Digests  []string           // repo@sha256:… the image was pulled or pushed by (RepoDigests)
	Created  time.Time          // when the store got it
	ChainID  digest.Digest      // top layer's snapshot name ("" for an image with no layers)
	Platform ocispec.Platform
	// LastTagTime is when a name was last put on the image (inspect's
	// Metadata.LastTagTime); zero for an image never tagged here.
	LastTagTime time.Time `json:",omitempty"`
}

// Store keeps image records under <root> (atomic files + a cross-process
// lock) on top of a content store and a snapshotter.
type Store struct {
	root string
	cs   *content.Store
	sn   snapshot.Snapshotter
	// settling counts background flushes (settle); Flush waits for them
	// and, closing flushCh, makes them start at once.
	settling   sync.WaitGroup
	flushOnce  sync.Once // makes flushCh
	flushClose sync.Once // closes it
	flushCh    chan struct{}
	// discarded names the images NewStore dropped because a power loss
	// may have taken their layers (Discarded).
	discarded []string
}

// NewStore opens the image store.
func NewStore(root string, cs *content.Store, sn snapshot.Snapshotter) (*Store, error) {
	if cs == nil || sn == nil {
		return nil, fmt.Errorf("image store %s: content store and snapshotter are required", root)
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	s := &Store{root: root, cs: cs, sn: sn}
	if err := s.recoverUnsynced(context.Background()); err != nil {
		return nil, fmt.Errorf("image store %s: %w", root, err)
	}
	return s, nil
}

// Content and Snapshotter return the stores the image store is built on.
func (s *Store) Content() *content.Store           { return s.cs }
func (s *Store) Snapshotter() snapshot.Snapshotter { return s.sn }

// Fetcher returns a blob's bytes (a registry, an archive being loaded).
type Fetcher interface {
	Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error)
}

// Progress is one event of a pull, load or import, per blob (ID = the
// short digest Docker prints: first 12 hex chars). Action is one of
// "Pulling fs layer", "Downloading", "Verifying Checksum", "Download complete",
// "Extracting", "Pull complete", "Already exists".
type Progress struct {
	ID      string
	Action  string
	Current int64
	Total   int64
}

// FetchOptions drive Store.Fetch.
type FetchOptions struct {
	Fetcher  Fetcher
	Manifest ocispec.Descriptor // the platform manifest (Docker schema 2 or OCI)
	// ManifestBytes are the manifest's bytes when the caller has them
	// (registry.Resolve read them): checked against Manifest.Digest like
	// fetched ones, and spare the registry a second request.
	ManifestBytes []byte
	// Name, when set, is put on the image as Tag would, and RepoDigest
	// (repo@sha256:…) recorded as AddDigest would, in the same write of
	// the image records as the image itself (a pull's last step).
	Name, RepoDigest string
	// Progress may be nil. Fetch serializes its calls (one at a time, from
	// whichever goroutine has news), so it needs no locking of its own.
	Progress func(Progress)
	// Parallel bounds concurrent layer downloads (0 = 3, Docker's default;
	// 5 or 6 measured no faster on 2 CPUs). Layers under 1 MiB compressed
	// do not count against it.
	Parallel int
	// MaxLayerSize bounds each layer's uncompressed size, so a decompression
	// bomb fails instead of filling the disk (0 = archive's default, 64 GiB).
	MaxLayerSize int64
}

// DeleteItem is one line of rmi output.
type DeleteItem struct{ Untagged, Deleted string }

// Lease keeps GC away while the caller writes blobs or snapshots that no
// image references yet (imagearchive.Load before Tag, a build). Fetch takes
// one itself. Call release when the result is recorded (or abandoned).
func (s *Store) Lease(ctx context.Context) (release func(), err error) {
	l, err := lockFile(ctx, filepath.Join(s.root, "gc.lock"), false)
	if err != nil {
		return nil, fmt.Errorf("image lease: %w", err)
	}
	return func() { l.unlock() }, nil
}
