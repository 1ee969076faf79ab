package image

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"strconv"
	"sync"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/snapshot"
	"github.com/berth-dev/berth/internal/timing"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
)

// unpacker is one Fetch's layer pipeline.
type unpacker struct {
	s         *Store
	fetcher   Fetcher
	progress  *progressSink
	overlay   bool
	maxBytes  int64           // bound on one layer's uncompressed tar (0 = archive's default)
	unsynced  bool            // the ledger lists this pull's layers: commit them without a flush
	recorded  chan struct{}   // closed once the ledger entry is written (or there is none)
	recordErr error           // the entry's write failed: nothing may be named (set before recorded closes)
	sched     *scheduler      // download slots and prepare turns
	early     *earlyFetches   // GETs sent before the config arrived
	done      []chan struct{} // done[i] closes when layer i's snapshot is committed
	commits   *commitQueue
}

type layerTask struct {
	i       int
	desc    ocispec.Descriptor
	diffID  digest.Digest
	chainID digest.Digest
	parent  digest.Digest // "" for the base layer
	id      string        // short digest for progress
}

// run unpacks every layer and returns each one's unpacked size (-1 for a
// layer that already existed). The first failure cancels the others; each
// removes its own active snapshot, so nothing half-written stays visible.
//
// With overlay whiteouts every layer unpacks at once into an empty active
// snapshot and only the commits go in order (a layer's commit names its
// parent, which must be committed). The native snapshotter copies the
// parent into the new snapshot, so layer i is prepared only after i-1 is
// committed; its download still runs ahead into the content store.
func (u *unpacker) run(ctx context.Context, layers []ocispec.Descriptor, diffIDs, chain []digest.Digest) ([]int64, error) {
	u.done = make([]chan struct{}, len(layers))
	u.commits = newCommitQueue(chain)
	sizes := make([]int64, len(layers))
	for i := range layers {
		u.done[i] = make(chan struct{})
		sizes[i] = -1
	}
	g, gctx := errgroup.WithContext(ctx)
	u.sched.start(gctx)
	for i, l := range layers {
		t := layerTask{i: i, desc: l, diffID: diffIDs[i], chainID: chain[i], id: shortID(l.Digest)}
		if i > 0 {
			t.parent = chain[i-1]
		}
		g.Go(func() error {
			n, err := u.layer(gctx, t)
			if err != nil {
				return fmt.Errorf("layer %s: %w", t.desc.Digest, err)
			}
			sizes[t.i] = n
			close(u.done[t.i])
			return nil
		})
	}
	return sizes, g.Wait()
}

func (u *unpacker) layer(ctx context.Context, t layerTask) (int64, error) {
	defer u.sched.prepared(t.i) // whichever way this layer went
	exists, err := u.committed(ctx, t.chainID)
	if err != nil {
		return 0, err
	}
	if exists {
		// The snapshot is what containers need; the blob is what save and
		// push need, so fetch it if a differently compressed twin left
		// only the snapshot behind.
		u.sched.prepared(t.i)
		if err := u.sched.acquire(ctx, t.i); err != nil {
			return 0, err
		}
		defer u.sched.release(t.i)
		if err := u.download(ctx, t, false); err != nil {
			return 0, err
		}
		u.progress.emit(t.id, "Already exists", 0, 0)
		return -1, nil
	}
	// Docker's first word for a layer; "Waiting" would claim it is queued.
	u.progress.emit(t.id, "Pulling fs layer", 0, t.desc.Size)
	if u.overlay {
		return u.stream(ctx, t)
	}
	u.sched.prepared(t.i) // the native snapshotter prepares in layer order
	return u.sequential(ctx, t)
}

// stream unpacks one layer in a single pass: fetcher → content ingest
// (compressed digest) → decompress → diff ID hash → Apply.
func (u *unpacker) stream(ctx context.Context, t layerTask) (_ int64, retErr error) {
	// Prepared before the download slot is ours: an overlay layer starts
	// empty whatever its parent, and creating the snapshot now, while the
	// disk is idle, keeps its metadata fsync out of the later stretch
	// where it would queue behind the other layers' writeback.
	if err := u.sched.waitPrepare(ctx, t.i); err != nil {
		return 0, err
	}
	key, dir, err := u.prepare(ctx, t, "")
	u.mark(t, "prepared")
	u.sched.prepared(t.i)
	if err != nil {
		return 0, err
	}
	committed := false
	defer func() {
		if !committed {
			_ = u.s.sn.Remove(context.WithoutCancel(ctx), key)
		}
	}()
	if err := u.sched.acquire(ctx, t.i); err != nil {
		return 0, err
	}
	held := true
	defer func() {
		if held {
			u.sched.release(t.i)
		}
	}()
	u.mark(t, "acquired")
	src, w, err := u.open(ctx, t)
	if err != nil {
		return 0, err
	}
	defer src.Close()
	if w != nil {
		defer w.Close()
	} else if exists, err := u.committed(ctx, t.chainID); err != nil || exists {
		// Another process fetched this blob while we waited for its
		// ingest lock, and has unpacked it too.
		if err == nil {
			u.progress.emit(t.id, "Already exists", 0, 0)
		}
		return -1, err
	}
	x, err := u.extract(ctx, t, src, w, dir, archive.WhiteoutsOverlay)
	if err != nil {
		return 0, err
	}
	// The network and the CPU are free for the next layer while this one
	// goes to disk.
	u.mark(t, "extracted")
	u.sched.release(t.i)
	held = false
	n, err := u.verify(ctx, t, x, w, dir)
	u.mark(t, "verified")
	if err != nil {
		return 0, err
	}
	if err := u.commit(ctx, t, key); err != nil {
		return 0, err
	}
	committed = true
	u.mark(t, "committed")
	return n, nil
}

// sequential is the native snapshotter's path: download into the content
// store while earlier layers unpack, then unpack on top of the parent.
func (u *unpacker) sequential(ctx context.Context, t layerTask) (_ int64, retErr error) {
	if err := u.sched.acquire(ctx, t.i); err != nil {
		return 0, err
	}
	err := u.download(ctx, t, true)
	u.sched.release(t.i)
	if err != nil {
		return 0, err
	}
	if err := u.waitParent(ctx, t); err != nil {
		return 0, err
	}
	if exists, err := u.committed(ctx, t.chainID); err != nil || exists {
		if err == nil {
			u.progress.emit(t.id, "Already exists", 0, 0)
		}
		return -1, err
	}
	key, dir, err := u.prepare(ctx, t, t.parent.String())
	if err != nil {
		return 0, err
	}
	defer func() {
		if retErr != nil {
			_ = u.s.sn.Remove(context.WithoutCancel(ctx), key)
		}
	}()
	src, err := u.s.cs.Open(ctx, t.desc.Digest)
	if err != nil {
		return 0, err
	}
	defer src.Close()
	x, err := u.extract(ctx, t, src, nil, dir, archive.WhiteoutsApply)
	if err != nil {
		return 0, err
	}
	n, err := u.verify(ctx, t, x, nil, dir)
	if err != nil {
		return 0, err
	}
	return n, u.commit(ctx, t, key)
}

// open returns the layer's compressed bytes: from the content store when
// the blob is there, else from the fetcher together with the ingest they
// must be written to. When another process holds the ingest, content's
// Writer waits for it and then reports ErrAlreadyExists: read its result.
func (u *unpacker) open(ctx context.Context, t layerTask) (io.ReadCloser, *content.Writer, error) {
	rc, w, ok, err := u.early.take(ctx, t.i)
	if err != nil {
		return nil, nil, fmt.Errorf("fetch: %w", err)
	}
	if !ok {
		if _, err := u.s.cs.Info(ctx, t.desc.Digest); err == nil {
			f, err := u.s.cs.Open(ctx, t.desc.Digest)
			return f, nil, err
		} else if !errdefs.IsNotFound(err) {
			return nil, nil, err
		}
		w, err = u.s.cs.Writer(ctx, t.desc.Digest.String(), t.desc)
		if errdefs.IsAlreadyExists(err) {
			f, err := u.s.cs.Open(ctx, t.desc.Digest)
			return f, nil, err
		}
		if err != nil {
			return nil, nil, err
		}
		if rc, err = u.fetcher.Fetch(ctx, t.desc); err != nil {
			w.Close()
			return nil, nil, fmt.Errorf("fetch: %w", err)
		}
	}
	if u.unsynced {
		w.SkipWriteback()
	}
	// Every byte read from rc goes into w, whose Commit checks the digest
	// before the blob (or any snapshot unpacked from it) becomes visible:
	// a fetcher that also hashes would hash each layer twice.
	if d, ok := rc.(digestDeferrer); ok {
		d.DeferDigest()
	}
	return rc, w, nil
}

// download puts the blob in the content store unless it is there.
func (u *unpacker) download(ctx context.Context, t layerTask, report bool) error {
	src, w, err := u.open(ctx, t)
	if err != nil {
		return err
	}
	defer src.Close()
	if w == nil {
		return nil
	}
	defer w.Close()
	var r io.Reader = src
	if report {
		r = u.progress.reader(src, t.id, t.desc.Size)
	}
	if _, err := io.Copy(w, r); err != nil {
		return fmt.Errorf("download: %w", err)
	}
	if report {
		u.progress.emit(t.id, "Verifying Checksum", 0, 0)
	}
	if _, err := u.commitBlob(ctx, w); err != nil && !errdefs.IsAlreadyExists(err) {
		return err
	}
	if report {
		u.progress.emit(t.id, "Download complete", 0, 0)
	}
	return nil
}

// extracted is what extract leaves for verify: the uncompressed size and
// the running diff ID hash.
type extracted struct {
	n int64
	h hash.Hash
}

// extract applies the compressed stream src to dir, writing it to w on the
// way when w is not nil. Nothing is verified yet: verify does that once
// the stream is consumed to its end.
func (u *unpacker) extract(ctx context.Context, t layerTask, src io.ReadCloser, w *content.Writer, dir string, wf archive.WhiteoutFormat) (extracted, error) {
	var (
		r   io.Reader  = src
		in  *readAhead // receiving: network, ingest write, compressed digest
		out *readAhead // decompressing: inflate, diff ID digest
		dec io.ReadCloser
	)
	// Stop the stages upstream first: a decompressing stage waiting for
	// bytes is released by the receiving stage's end. The decompressor
	// goes last, when nothing reads it any more (an igzip process is
	// killed if it still runs).
	defer func() {
		if in != nil {
			in.Close()
		}
		if out != nil {
			out.Close()
		}
		if dec != nil {
			dec.Close()
		}
	}()
	if w != nil {
		in = newReadAhead(readCloser{u.progress.reader(src, t.id, t.desc.Size), src}, receiveChunks, w)
		r = in
	}
	decompress := archive.Decompress
	if t.desc.Size >= smallLayer {
		// igzip where installed: inflate is most of a pull's CPU.
		decompress = archive.DecompressLayer
	}
	d, _, err := decompress(r)
	if err != nil {
		return extracted{}, u.blame(ctx, r, w, fmt.Errorf("decompress: %w", err))
	}
	dec = &closeOnce{ReadCloser: d}
	// The decompressor runs a stage ahead of Apply: a layer of many small
	// files spends as long in file creation as in inflate, and the last
	// layer of a pull would otherwise use one CPU of several.
	h := t.diffID.Algorithm().Hash()
	out = newReadAhead(readCloser{dec, nopCloser{}}, inflateChunks, h)
	// blame reads r itself: the decompressing stage must be gone first,
	// and the decompressor too (igzip's feeder reads r).
	stopOut := func() { out.Close(); dec.Close() }
	n, err := archive.Apply(ctx, dir, out, archive.ApplyOptions{Whiteouts: wf, MaxBytes: u.maxBytes, NoWriteback: u.unsynced})
	if err != nil {
		stopOut()
		return extracted{}, u.blame(ctx, r, w, fmt.Errorf("apply: %w", err))
	}
	// Apply may stop at the end-of-archive marker and the decompressor at
	// the end of its stream: both digests must cover every byte.
	tail, err := io.Copy(io.Discard, out)
	if err != nil {
		stopOut()
		return extracted{}, u.blame(ctx, r, w, fmt.Errorf("decompress: %w", err))
	}
	if _, err := io.Copy(io.Discard, r); err != nil {
		return extracted{}, fmt.Errorf("read: %w", err)
	}
	return extracted{n: n + tail, h: h}, nil
}

// verify checks both digests: the compressed one by committing w (the
// content store checks it), the uncompressed one against the config's
// diff ID. It returns the uncompressed size. A pull covered by the ledger
// flushes nothing here (package doc, "Durability of a pull"); without one
// (no boot ID), one syncfs of the snapshot's filesystem runs before the
// blob and the snapshot are named, which flushes the blob too when the
// content store shares the filesystem, as it does under one --root.
func (u *unpacker) verify(ctx context.Context, t layerTask, x extracted, w *content.Writer, dir string) (int64, error) {
	if w != nil {
		u.progress.emit(t.id, "Verifying Checksum", 0, 0)
	}
	if !u.unsynced {
		if err := archive.SyncDir(dir); err != nil {
			return 0, fmt.Errorf("sync snapshot: %w", err)
		}
	}
	if w != nil {
		if _, err := u.commitBlob(ctx, w); err != nil && !errdefs.IsAlreadyExists(err) {
			return 0, err
		}
		u.progress.emit(t.id, "Download complete", 0, 0)
	}
	if got := digest.NewDigest(t.diffID.Algorithm(), x.h); got != t.diffID {
		return 0, fmt.Errorf("%w: uncompressed layer digest %s does not match diff ID %s", errdefs.ErrInvalidArgument, got, t.diffID)
	}
	u.progress.emit(t.id, "Extracting", x.n, x.n)
	return x.n, nil
}

// ledgerWritten waits until the ledger entry that covers this pull's
// layers is on disk: before that, nothing it lists may be named.
func (u *unpacker) ledgerWritten(ctx context.Context) error {
	select {
	case <-u.recorded:
		return u.recordErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// commitBlob names a verified layer blob, without a flush when the ledger
// covers it.
func (u *unpacker) commitBlob(ctx context.Context, w *content.Writer) (ocispec.Descriptor, error) {
	if err := u.ledgerWritten(ctx); err != nil {
		return ocispec.Descriptor{}, err
	}
	if u.unsynced {
		return w.CommitUnsynced(ctx)
	}
	return w.Commit(ctx)
}

// blame explains an unpack failure: bytes that do not match the layer's
// digest make the decompressor or the tar reader fail first, with a
// message about gzip or tar; what the user needs to hear is that the blob
// is corrupt. So the rest of the blob is received and its digest checked;
// an intact blob leaves the unpack error standing (a hostile tar, a full
// disk).
func (u *unpacker) blame(ctx context.Context, r io.Reader, w *content.Writer, err error) error {
	if w == nil || ctx.Err() != nil {
		return err
	}
	if _, cerr := io.Copy(io.Discard, r); cerr != nil {
		return err
	}
	if _, cerr := w.Commit(ctx); errdefs.IsInvalidArgument(cerr) {
		return fmt.Errorf("verify: %w", cerr)
	}
	return err
}

func (u *unpacker) prepare(ctx context.Context, t layerTask, parent string) (key, dir string, err error) {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", err
	}
	key = "extract-" + hex.EncodeToString(b[:]) + "-" + t.chainID.String()
	dir, err = u.s.sn.Prepare(ctx, key, parent, nil)
	if err != nil {
		return "", "", fmt.Errorf("prepare snapshot: %w", err)
	}
	return key, dir, nil
}

// commit makes layer t's snapshot visible once its parent is, together
// with the verified layers above it (commitQueue). Its files are on disk
// already (verify).
func (u *unpacker) commit(ctx context.Context, t layerTask, key string) error {
	u.commits.ready(t.i, key)
	if err := u.waitParent(ctx, t); err != nil {
		return err
	}
	if err := u.ledgerWritten(ctx); err != nil {
		return err
	}
	if links := u.commits.take(t.i); len(links) > 0 {
		// A name that exists already counts as committed: a concurrent
		// unpack of the same layer won, with the same content.
		n, err := u.s.sn.CommitChain(ctx, links)
		u.commits.settle(t.i, n, len(links))
		if n == 0 {
			return fmt.Errorf("commit snapshot: %w", err)
		}
	}
	u.progress.emit(t.id, "Pull complete", 0, 0)
	return nil
}

// mark records a step of layer t for BERTH_TIMING.
func (u *unpacker) mark(t layerTask, step string) {
	if timing.On {
		timing.Mark("image", "layer "+strconv.Itoa(t.i)+" "+t.id+": "+step)
	}
}

func (u *unpacker) waitParent(ctx context.Context, t layerTask) error {
	if t.i == 0 {
		return nil
	}
	select {
	case <-u.done[t.i-1]:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (u *unpacker) committed(ctx context.Context, chainID digest.Digest) (bool, error) {
	info, err := u.s.sn.Stat(ctx, chainID.String())
	if errdefs.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("stat snapshot %s: %w", chainID, err)
	}
	return info.Kind == snapshot.KindCommitted, nil
}

func shortID(d digest.Digest) string {
	e := d.Encoded()
	if len(e) > 12 {
		e = e[:12]
	}
	return e
}

// digestDeferrer is a fetched stream that can leave its digest check to
// the reader (registry's verifier).
type digestDeferrer interface{ DeferDigest() }

// closeOnce closes a decompressor once, however many teardown paths
// reach it.
type closeOnce struct {
	io.ReadCloser
	once sync.Once
	err  error
}

func (c *closeOnce) Close() error {
	c.once.Do(func() { c.err = c.ReadCloser.Close() })
	return c.err
}

type nopCloser struct{}

func (nopCloser) Close() error { return nil }

type readCloser struct {
	io.Reader
	io.Closer
}
