package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/berth-dev/berth/internal/atomicfile"
	"github.com/opencontainers/go-digest"
)

// records is the content of images.json.
type records struct {
	Images []Image `json:"images"`
	// Layers maps a layer snapshot's chain ID to its unpacked size (the
	// bytes of its uncompressed tar), recorded when it was unpacked so that
	// `images`, `history` and `system df` never walk a directory tree.
	Layers map[digest.Digest]int64 `json:"layers,omitempty"`
	// Unsynced lists what pulls named without flushing it to disk, one
	// entry per Fetch, until a syncfs makes it durable (see "Durability of
	// a pull" in the package doc).
	Unsynced []unsynced `json:"unsynced,omitempty"`
}

// unsynced is one Fetch's ledger entry: the blobs and layer snapshots it
// may create without a flush, written (durably) before any of them is
// named. In the boot that wrote it, they are as valid as any; a later
// boot cannot know what reached the disk and discards them.
type unsynced struct {
	ID        string          `json:"id"`   // random: the Fetch's own
	Boot      string          `json:"boot"` // /proc/sys/kernel/random/boot_id
	Started   time.Time       `json:"started"`
	Blobs     []digest.Digest `json:"blobs,omitempty"`
	Snapshots []digest.Digest `json:"snapshots,omitempty"` // chain IDs
}

func (s *Store) recordsPath() string { return filepath.Join(s.root, "images.json") }

// load reads images.json; a missing file is an empty store.
func (s *Store) load() (*records, error) {
	b, err := os.ReadFile(s.recordsPath())
	if errors.Is(err, fs.ErrNotExist) {
		return &records{Layers: map[digest.Digest]int64{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read image records: %w", err)
	}
	var r records
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("parse %s: %w", s.recordsPath(), err)
	}
	if r.Layers == nil {
		r.Layers = map[digest.Digest]int64{}
	}
	return &r, nil
}

// update runs fn on the records under the store's exclusive lock and writes
// the result atomically when fn returns nil.
func (s *Store) update(ctx context.Context, fn func(*records) error) error {
	l, err := lockFile(ctx, filepath.Join(s.root, "images.lock"), true)
	if err != nil {
		return fmt.Errorf("lock image records: %w", err)
	}
	defer l.unlock()
	r, err := s.load()
	if err != nil {
		return err
	}
	if err := fn(r); err != nil {
		return err
	}
	return s.save(r)
}

// save writes temp, fsync, rename, fsync dir: a kill -9 at any instant
// leaves the old file or the new one.
func (s *Store) save(r *records) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode image records: %w", err)
	}
	if err := atomicfile.Write(s.recordsPath(), b, 0o600, atomicfile.Durable); err != nil {
		return fmt.Errorf("write image records: %w", err)
	}
	return nil
}

func (r *records) index(id digest.Digest) int {
	return slices.IndexFunc(r.Images, func(img Image) bool { return img.ID == id })
}

// upsert stores img, merging its names and digests into an existing record
// of the same ID; a name moves from whatever image held it.
func (r *records) upsert(img Image) *Image {
	i := r.index(img.ID)
	if i < 0 {
		names, digests := img.Names, img.Digests
		img.Names, img.Digests = nil, nil
		r.Images = append(r.Images, img)
		i = len(r.Images) - 1
		img.Names, img.Digests = names, digests
	} else {
		cur := &r.Images[i]
		if img.Target.Digest != "" {
			cur.Target = img.Target
		}
		if img.ChainID != "" {
			cur.ChainID = img.ChainID
		}
		if img.Platform.OS != "" {
			cur.Platform = img.Platform
		}
	}
	for _, n := range img.Names {
		r.setName(n, i)
	}
	for _, d := range img.Digests {
		r.setDigest(d, i)
	}
	return &r.Images[i]
}

// setName puts name on image i, taking it off any other image (which
// stays, without that name, as Docker leaves a dangling <none>:<none>).
func (r *records) setName(name string, i int) {
	for j := range r.Images {
		if j != i {
			r.Images[j].Names = slices.DeleteFunc(r.Images[j].Names, func(n string) bool { return n == name })
		}
	}
	if !slices.Contains(r.Images[i].Names, name) {
		r.Images[i].Names = append(r.Images[i].Names, name)
	}
}

// setDigest records a repo@digest reference on image i. A manifest digest
// names exactly one config, so it cannot sit on another image.
func (r *records) setDigest(d string, i int) {
	for j := range r.Images {
		if j != i {
			r.Images[j].Digests = slices.DeleteFunc(r.Images[j].Digests, func(x string) bool { return x == d })
		}
	}
	if !slices.Contains(r.Images[i].Digests, d) {
		r.Images[i].Digests = append(r.Images[i].Digests, d)
	}
}
