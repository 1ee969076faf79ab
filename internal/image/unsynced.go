package image

// The pull durability ledger ("Durability of a pull" in the package doc):
// what a Fetch names without a flush, settled by a background syncfs or
// discarded after a reboot.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/snapshot"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// bootID names the running boot of the kernel: a ledger entry written
// under another boot ID survived a reboot. Tests replace it to simulate one.
var bootID = func() (string, error) {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return "", fmt.Errorf("boot id: %w", err)
	}
	id := strings.TrimSpace(string(b))
	if id == "" {
		return "", fmt.Errorf("boot id: /proc/sys/kernel/random/boot_id is empty: %w", errdefs.ErrNotSupported)
	}
	return id, nil
}

// flushFS flushes the filesystem holding a directory (syncfs); tests make
// it fail to leave a pull unsettled, as a power cut would.
var flushFS = archive.SyncDir

// planUnsynced lists the layer blobs and snapshots this Fetch is about to
// create without a flush: those absent now. It returns nil when nothing is
// missing or the boot cannot be told apart (then the Fetch flushes each
// layer as before). recordUnsynced writes the entry; nothing it lists may
// be named before that write returned.
func (s *Store) planUnsynced(ctx context.Context, layers []ocispec.Descriptor, chain []digest.Digest) (*unsynced, error) {
	boot, err := bootID()
	if err != nil {
		return nil, nil
	}
	e := unsynced{Boot: boot, Started: time.Now().UTC()}
	for i, l := range layers {
		if _, err := s.cs.Info(ctx, l.Digest); errdefs.IsNotFound(err) {
			e.Blobs = append(e.Blobs, l.Digest)
		} else if err != nil {
			return nil, err
		}
		if info, err := s.sn.Stat(ctx, chain[i].String()); errdefs.IsNotFound(err) || (err == nil && info.Kind != snapshot.KindCommitted) {
			e.Snapshots = append(e.Snapshots, chain[i])
		} else if err != nil {
			return nil, fmt.Errorf("stat snapshot %s: %w", chain[i], err)
		}
	}
	if len(e.Blobs) == 0 && len(e.Snapshots) == 0 {
		return nil, nil
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	e.ID = hex.EncodeToString(b[:])
	return &e, nil
}

// recordUnsynced writes a planned ledger entry, durably.
func (s *Store) recordUnsynced(ctx context.Context, e *unsynced) error {
	if err := s.update(ctx, func(r *records) error {
		r.Unsynced = append(r.Unsynced, *e)
		return nil
	}); err != nil {
		return fmt.Errorf("record unsynced layers: %w", err)
	}
	return nil
}

// settleLater flushes what the finished Fetch id wrote and then drops its
// ledger entry, in the background, settleDelay after the pull returned.
// The delay is for the CLI, which exits right after a pull: a process
// cannot exit while one of its threads waits in syncfs (measured here:
// 0.1–0.3 s added to every `berth pull`), so a short-lived process leaves
// the entry to the next store opened in this boot (recoverUnsynced), and a
// daemon settles it a moment later. Flush skips the delay.
func (s *Store) settleLater(id string) {
	s.settling.Add(1)
	go func() {
		defer s.settling.Done()
		t := time.NewTimer(settleDelay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-s.flushNow():
		}
		_ = s.settle(context.Background(), []string{id})
	}()
}

// settleDelay is how long after a pull its background flush starts.
var settleDelay = 2 * time.Second

// flushNow is closed by Flush.
func (s *Store) flushNow() <-chan struct{} {
	s.flushOnce.Do(func() { s.flushCh = make(chan struct{}) })
	return s.flushCh
}

// Flush makes the pulls this store ran durable now (their background
// flushes start at once) and waits for them, so that what they wrote
// survives a power loss. A process that wants its pulls durable before it
// exits calls it last.
func (s *Store) Flush() {
	s.flushNow()
	s.flushClose.Do(func() { close(s.flushCh) })
	s.settling.Wait()
}

// Discarded names the images this store found incomplete when it opened
// (layers pulled without a flush before a reboot) and dropped: a pull of
// the same reference fetches them again.
func (s *Store) Discarded() []string { return slices.Clone(s.discarded) }

// settle flushes the filesystems of the content store and the snapshots,
// then removes the ledger entries ids: after a syncfs that began once
// their Fetches had finished writing, what they list is on disk.
func (s *Store) settle(ctx context.Context, ids []string) error {
	if err := flushFS(s.cs.Root()); err != nil {
		return err
	}
	// The snapshots may sit on another filesystem; if not, this second
	// syncfs finds nothing dirty (it runs in the background anyway).
	if dir := s.snapshotDir(ctx); dir != "" {
		if err := flushFS(dir); err != nil {
			return err
		}
	}
	return s.update(ctx, func(r *records) error {
		r.Unsynced = slices.DeleteFunc(r.Unsynced, func(e unsynced) bool { return slices.Contains(ids, e.ID) })
		return nil
	})
}

// snapshotDir is some committed snapshot's directory ("" for none), to
// name the snapshots' filesystem.
func (s *Store) snapshotDir(ctx context.Context) string {
	var dir string
	_ = s.sn.Walk(ctx, func(i snapshot.Info) error {
		if dir == "" && i.Kind == snapshot.KindCommitted {
			dir, _ = s.sn.UpperDir(ctx, i.Key)
		}
		return nil
	})
	return dir
}

// recoverUnsynced runs when the store opens. Ledger entries of an earlier
// boot name blobs and snapshots a power loss may have cut short: they are
// removed, with every image built on them, under the GC lock (no Fetch is
// in flight, so none is reusing them). Entries of this boot whose Fetch
// is over (its process exited before its own flush) are flushed and
// dropped in the background (settleStale).
func (s *Store) recoverUnsynced(ctx context.Context) error {
	r, err := s.load()
	if err != nil || len(r.Unsynced) == 0 {
		return nil // a broken images.json is reported by whoever reads it
	}
	boot, err := bootID()
	if err != nil {
		return nil
	}
	current := 0
	for _, e := range r.Unsynced {
		if e.Boot == boot {
			current++
		}
	}
	if current < len(r.Unsynced) {
		if err := s.discardUnsynced(ctx, boot); err != nil {
			return err
		}
	}
	if current > 0 {
		s.settling.Add(1)
		go func() {
			defer s.settling.Done()
			s.settleStale(ctx, boot)
		}()
	}
	return nil
}

// settleAge is how old an entry of this boot must be before a store that
// opens settles it. By then the kernel's periodic writeback
// (vm.dirty_expire_centisecs, 30 s by default) has written its data and
// the syncfs has little of it left to do, and the command right after a
// pull (a `run`) does not wait at its exit for a syncfs still under way.
var settleAge = 30 * time.Second

// settleStale settles this boot's entries older than settleAge if no
// Fetch holds a lease: with none running, every entry's writes are over
// (finished or killed).
func (s *Store) settleStale(ctx context.Context, boot string) {
	// A cancelled context makes lockFile try once without waiting.
	try, cancel := context.WithCancel(ctx)
	cancel()
	l, err := lockFile(try, filepath.Join(s.root, "gc.lock"), true)
	if err != nil {
		return // a Fetch is running; its own settle comes later
	}
	r, err := s.load()
	// Released before the flush: entries that start after this point are
	// not in ids.
	l.unlock()
	if err != nil {
		return
	}
	var ids []string
	for _, e := range r.Unsynced {
		if e.Boot == boot && time.Since(e.Started) >= settleAge {
			ids = append(ids, e.ID)
		}
	}
	if len(ids) > 0 {
		_ = s.settle(ctx, ids)
	}
}

// discardUnsynced removes what ledger entries of earlier boots name:
// first the images that use any of it (so `images` never lists an image
// without its layers), then the snapshots with everything stacked on them
// (a container's writable layer too: its lower layers may be lost), then
// the blobs; the entries go last, so a failure is retried on next open.
func (s *Store) discardUnsynced(ctx context.Context, boot string) error {
	r, unlock, err := s.lockSweep(ctx)
	if err != nil {
		return fmt.Errorf("recover unsynced pulls: %w", err)
	}
	defer unlock()
	deadBlobs := map[digest.Digest]bool{}
	deadSnaps := map[string]bool{}
	var old []string
	for _, e := range r.Unsynced {
		if e.Boot == boot {
			continue
		}
		old = append(old, e.ID)
		for _, d := range e.Blobs {
			deadBlobs[d] = true
		}
		for _, c := range e.Snapshots {
			deadSnaps[c.String()] = true
		}
	}
	if len(old) == 0 {
		return nil // another process recovered first
	}

	// Snapshots stacked on a dead one are dead too.
	infos := map[string]snapshot.Info{}
	if err := s.sn.Walk(ctx, func(i snapshot.Info) error { infos[i.Key] = i; return nil }); err != nil {
		return fmt.Errorf("recover unsynced pulls: walk snapshots: %w", err)
	}
	var dead func(key string, depth int) bool
	dead = func(key string, depth int) bool {
		if deadSnaps[key] {
			return true
		}
		i, ok := infos[key]
		if !ok || i.Parent == "" || depth > len(infos) {
			return false
		}
		if dead(i.Parent, depth+1) {
			deadSnaps[key] = true
			return true
		}
		return false
	}
	for key := range infos {
		dead(key, 0)
	}

	// Images first.
	kept := r.Images[:0]
	for _, img := range r.Images {
		if s.usesAny(ctx, img, deadBlobs, deadSnaps) {
			s.discarded = append(s.discarded, describe(img))
			continue
		}
		kept = append(kept, img)
	}
	r.Images = kept
	if err := s.save(r); err != nil {
		return fmt.Errorf("recover unsynced pulls: %w", err)
	}

	// Snapshots, children before parents.
	_, errs := s.removeSnapshots(ctx, r, infos, func(key string) bool { return deadSnaps[key] }, false)
	for d := range deadBlobs {
		if err := s.cs.Delete(ctx, d); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove blob %s: %w", d, err))
		}
	}
	for key := range infos {
		if deadSnaps[key] {
			errs = append(errs, fmt.Errorf("snapshot %s: still there", key))
		}
	}
	if len(errs) == 0 {
		r.Unsynced = slices.DeleteFunc(r.Unsynced, func(e unsynced) bool { return slices.Contains(old, e.ID) })
	}
	if err := s.save(r); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("recover unsynced pulls: %w", err)
	}
	return nil
}

// usesAny reports whether img needs one of the dead blobs or snapshots.
func (s *Store) usesAny(ctx context.Context, img Image, blobs map[digest.Digest]bool, snaps map[string]bool) bool {
	if img.ChainID != "" && snaps[img.ChainID.String()] {
		return true
	}
	bs, ss := s.uses(ctx, img)
	return slices.ContainsFunc(bs, func(d digest.Digest) bool { return blobs[d] }) ||
		slices.ContainsFunc(ss, func(c digest.Digest) bool { return snaps[c.String()] })
}

// describe names an image for Discarded: its first name, else its ID.
func describe(img Image) string {
	if len(img.Names) > 0 {
		return img.Names[0]
	}
	return img.ID.String()
}
