package snapshot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"time"

	"github.com/berth-dev/berth/internal/atomicfile"
	"github.com/berth-dev/berth/internal/errdefs"
	"golang.org/x/sys/unix"
)

// record is one snapshot in metadata.json. ID names its directory, so keys
// (any string) never become paths.
type record struct {
	ID      string            `json:"id"`
	Kind    Kind              `json:"kind"`
	Parent  string            `json:"parent,omitempty"`
	Created time.Time         `json:"created"`
	Labels  map[string]string `json:"labels,omitempty"`
}

type metadata struct {
	// NextID is the last directory number handed out.
	NextID    uint64             `json:"nextID"`
	Snapshots map[string]*record `json:"snapshots"`
}

// store is the part both drivers share: records, ids, locks, directories.
// Every mutation runs under an flock on <dir>/lock and rewrites
// metadata.json atomically, so a kill -9 leaves either the old or the new
// state. Readers need no lock: rename(2) gives them one file or the other.
type store struct {
	dir    string // <root>/<driver>
	driver string
}

func openStore(root, driver string) (*store, error) {
	s := &store{dir: filepath.Join(root, driver), driver: driver}
	if err := os.MkdirAll(s.snapshotsDir(), 0o700); err != nil {
		return nil, fmt.Errorf("open %s snapshotter: %w", driver, err)
	}
	return s, nil
}

func (s *store) snapshotsDir() string         { return filepath.Join(s.dir, "snapshots") }
func (s *store) snapshotDir(id string) string { return filepath.Join(s.snapshotsDir(), id) }
func (s *store) fsDir(id string) string       { return filepath.Join(s.snapshotDir(id), "fs") }
func (s *store) workDir(id string) string     { return filepath.Join(s.snapshotDir(id), "work") }
func (s *store) metadataPath() string         { return filepath.Join(s.dir, "metadata.json") }
func (s *store) activePath() string           { return filepath.Join(s.dir, "active.json") }

// Records live in two files with different durability. metadata.json
// holds the committed snapshots (image layers) and is written with fsync:
// a power cut must not lose a layer. active.json holds the active ones
// (containers' writable layers, layers being unpacked) and is only renamed
// into place: atomic for every reader and safe against kill -9 (the page
// cache belongs to the kernel), and a power cut within the filesystem's
// commit interval can only lose active records, whose directories Cleanup
// then removes as orphans. A container start pays no fsync this way.
// metadata.json from before the split may hold active records; they are
// read and move to active.json on the next write.

func (s *store) read() (*metadata, error) {
	md, _, err := s.readFiles()
	return md, err
}

// readFiles merges both files; legacy reports active records in
// metadata.json, which the next write must rewrite. A missing metadata.json
// is a store without committed snapshots: the first commit writes it, and
// a store's first Prepare (a pull's first layer) pays no fsync for it.
func (s *store) readFiles() (md *metadata, legacy bool, err error) {
	md = &metadata{Snapshots: map[string]*record{}}
	b, err := os.ReadFile(s.metadataPath())
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, false, fmt.Errorf("read snapshot metadata: %w", err)
	default:
		if err := json.Unmarshal(b, md); err != nil {
			return nil, false, fmt.Errorf("read snapshot metadata %s: %w", s.metadataPath(), err)
		}
		if md.Snapshots == nil {
			md.Snapshots = map[string]*record{}
		}
	}
	committedIDs := map[string]bool{}
	for _, r := range md.Snapshots {
		if r.Kind == KindCommitted {
			committedIDs[r.ID] = true
		} else {
			legacy = true
		}
	}
	// active.json unreadable or torn (a power cut): its records are lost
	// and their directories are orphans for Cleanup.
	var act metadata
	if b, err := os.ReadFile(s.activePath()); err == nil && json.Unmarshal(b, &act) == nil {
		md.NextID = max(md.NextID, act.NextID)
		for k, r := range act.Snapshots {
			// A commit writes metadata.json before active.json: after a
			// power cut in between, the committed record wins its ID.
			if _, ok := md.Snapshots[k]; ok || r.Kind != KindActive || committedIDs[r.ID] {
				continue
			}
			md.Snapshots[k] = r
		}
	}
	return md, legacy, nil
}

// update runs fn on the current metadata under the store lock and writes
// the result when fn asks for it. fn may ask to write and still fail (Commit
// onto an existing name drops the active snapshot and reports the clash).
func (s *store) update(ctx context.Context, fn func(md *metadata) (write bool, err error)) error {
	unlock, err := s.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	md, legacy, err := s.readFiles()
	if err != nil {
		return err
	}
	before := committedOf(md)
	write, ferr := fn(md)
	if write {
		if err := s.write(md, legacy || !sameRecords(before, committedOf(md))); err != nil {
			return errors.Join(ferr, err)
		}
	}
	return ferr
}

// committedOf returns md's committed records (pointers shared with md).
func committedOf(md *metadata) map[string]*record {
	out := make(map[string]*record, len(md.Snapshots))
	for k, r := range md.Snapshots {
		if r.Kind == KindCommitted {
			out[k] = r
		}
	}
	return out
}

// sameRecords compares by key and record identity: fn replaces a record
// it changes (commit makes a new one), so identity is enough.
func sameRecords(a, b map[string]*record) bool {
	if len(a) != len(b) {
		return false
	}
	for k, r := range a {
		if b[k] != r {
			return false
		}
	}
	return true
}

// write stores md: the committed records in metadata.json when they
// changed (temp file, fsync, rename, fsync dir), the active ones in
// active.json always (temp file, rename). The temp names are fixed
// because only the lock holder writes.
func (s *store) write(md *metadata, committedChanged bool) error {
	committed := &metadata{NextID: md.NextID, Snapshots: map[string]*record{}}
	active := &metadata{NextID: md.NextID, Snapshots: map[string]*record{}}
	for k, r := range md.Snapshots {
		if r.Kind == KindCommitted {
			committed.Snapshots[k] = r
		} else {
			active.Snapshots[k] = r
		}
	}
	if committedChanged {
		if err := writeMetadata(s.metadataPath(), committed, true); err != nil {
			return err
		}
	}
	return writeMetadata(s.activePath(), active, false)
}

func writeMetadata(path string, md *metadata, durable bool) error {
	// metadata.json is indented for people; active.json changes with
	// every container and grows with their number, so it is compact.
	var b []byte
	var err error
	if durable {
		b, err = json.MarshalIndent(md, "", "  ")
	} else {
		b, err = json.Marshal(md)
	}
	if err != nil {
		return fmt.Errorf("encode snapshot metadata: %w", err)
	}
	var opts []atomicfile.Option
	if durable {
		opts = append(opts, atomicfile.Durable)
	}
	if err := atomicfile.Write(path, b, 0o600, opts...); err != nil {
		return fmt.Errorf("write snapshot metadata: %w", err)
	}
	return nil
}

// lock takes the store's flock, polling so that ctx can interrupt the wait
// (a blocking flock cannot be cancelled). Each call opens the file anew:
// flock belongs to the open file description, so this excludes goroutines
// of this process exactly as it excludes other processes.
func (s *store) lock(ctx context.Context) (func(), error) {
	f, err := os.OpenFile(filepath.Join(s.dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("snapshot lock: %w", err)
	}
	delay := 100 * time.Microsecond
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			f.Close()
			return nil, fmt.Errorf("snapshot lock: %w", &os.PathError{Op: "flock", Path: f.Name(), Err: err})
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			f.Close()
			return nil, fmt.Errorf("snapshot lock: %w", ctx.Err())
		case <-t.C:
		}
		delay = min(delay*2, 10*time.Millisecond)
	}
}

// lockDirNB flocks a snapshot directory without waiting. Prepare holds it
// while the directory exists without a record, so Cleanup (which takes it
// too) never deletes a snapshot being filled.
func lockDirNB(dir string) (*os.File, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, &os.PathError{Op: "flock", Path: dir, Err: err}
	}
	return f, nil
}

func (s *store) get(md *metadata, key string) (*record, error) {
	r, ok := md.Snapshots[key]
	if !ok {
		return nil, fmt.Errorf("snapshot %q: %w", key, errdefs.ErrNotFound)
	}
	return r, nil
}

func (s *store) Stat(ctx context.Context, key string) (Info, error) {
	md, err := s.read()
	if err != nil {
		return Info{}, err
	}
	r, err := s.get(md, key)
	if err != nil {
		return Info{}, err
	}
	return info(key, r), nil
}

func info(key string, r *record) Info {
	return Info{Key: key, Parent: r.Parent, Kind: r.Kind, Created: r.Created, Labels: r.Labels}
}

func (s *store) Walk(ctx context.Context, fn func(Info) error) error {
	md, err := s.read()
	if err != nil {
		return err
	}
	keys := make([]string, 0, len(md.Snapshots))
	for k := range md.Snapshots {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := fn(info(k, md.Snapshots[k])); err != nil {
			return err
		}
	}
	return nil
}

// prepare creates active snapshot key: the directory first (locked, so
// Cleanup leaves it alone), then fill (which may take long and runs without
// the store lock), then the record. A crash before the record leaves an
// orphan directory for Cleanup.
func (s *store) prepare(ctx context.Context, key, parent string, labels map[string]string, withWork bool,
	fill func(fsDir string, parent *record) error) (dir string, retErr error) {
	if key == "" {
		return "", fmt.Errorf("prepare: empty snapshot key: %w", errdefs.ErrInvalidArgument)
	}
	var (
		id      string
		dirLock *os.File
		parentR *record
	)
	err := s.update(ctx, func(md *metadata) (bool, error) {
		if _, ok := md.Snapshots[key]; ok {
			return false, fmt.Errorf("prepare snapshot %q: %w", key, errdefs.ErrAlreadyExists)
		}
		if parent != "" {
			p, ok := md.Snapshots[parent]
			if !ok || p.Kind != KindCommitted {
				return false, fmt.Errorf("prepare snapshot %q: parent %q is not a committed snapshot: %w", key, parent, errdefs.ErrNotFound)
			}
			parentR = p
		}
		md.NextID++
		id = strconv.FormatUint(md.NextID, 10)
		d := s.snapshotDir(id)
		// An id is persisted only with the next write; a crash before it
		// can leave a directory under an id that is handed out again.
		if err := os.RemoveAll(d); err != nil {
			return false, fmt.Errorf("prepare snapshot %q: %w", key, err)
		}
		if err := os.Mkdir(d, 0o700); err != nil {
			return false, fmt.Errorf("prepare snapshot %q: %w", key, err)
		}
		l, err := lockDirNB(d)
		if err != nil {
			os.RemoveAll(d)
			return false, fmt.Errorf("prepare snapshot %q: %w", key, err)
		}
		dirLock = l
		if fill == nil {
			// Nothing slow to do outside the lock (overlay: two empty
			// directories): make them and write the record now, one
			// metadata write instead of two.
			if err := s.makeDirs(id, withWork); err != nil {
				os.RemoveAll(d)
				return false, fmt.Errorf("prepare snapshot %q: %w", key, err)
			}
			md.Snapshots[key] = &record{ID: id, Kind: KindActive, Parent: parent, Created: time.Now().UTC(), Labels: labels}
		}
		return true, nil
	})
	if err != nil {
		if dirLock != nil {
			dirLock.Close() // the directory, if any, is Cleanup's
		}
		return "", err
	}
	if fill == nil {
		dirLock.Close()
		return s.fsDir(id), nil
	}
	defer dirLock.Close()
	defer func() {
		if retErr != nil {
			os.RemoveAll(s.snapshotDir(id))
		}
	}()
	if err := s.makeDirs(id, withWork); err != nil {
		return "", fmt.Errorf("prepare snapshot %q: %w", key, err)
	}
	if err := fill(s.fsDir(id), parentR); err != nil {
		return "", fmt.Errorf("prepare snapshot %q: %w", key, err)
	}
	err = s.update(ctx, func(md *metadata) (bool, error) {
		// Checked again: the lock was released while filling.
		if _, ok := md.Snapshots[key]; ok {
			return false, fmt.Errorf("prepare snapshot %q: %w", key, errdefs.ErrAlreadyExists)
		}
		if p, ok := md.Snapshots[parent]; parent != "" && (!ok || p.ID != parentR.ID) {
			return false, fmt.Errorf("prepare snapshot %q: parent %q was removed meanwhile: %w", key, parent, errdefs.ErrNotFound)
		}
		md.Snapshots[key] = &record{ID: id, Kind: KindActive, Parent: parent, Created: time.Now().UTC(), Labels: labels}
		return true, nil
	})
	if err != nil {
		return "", err
	}
	return s.fsDir(id), nil
}

// makeDirs makes a new snapshot's fs (and work) directory.
func (s *store) makeDirs(id string, withWork bool) error {
	if err := os.Mkdir(s.fsDir(id), 0o755); err != nil {
		return err
	}
	if withWork {
		return os.Mkdir(s.workDir(id), 0o700)
	}
	return nil
}

// commit turns active key into committed name. checkParent lets a driver
// refuse a parent other than the one it prepared on.
func (s *store) commit(ctx context.Context, name, key, parent string, checkParent func(r *record, parent string) error) error {
	var dropped string
	err := s.update(ctx, func(md *metadata) (bool, error) {
		var err error
		dropped, err = s.commitRecord(md, ChainLink{Name: name, Key: key, Parent: parent}, checkParent)
		return dropped != "" || err == nil, err
	})
	return s.dropCommitted(err, dropped)
}

// commitChain is commit for several links under one lock and one metadata
// write (see Snapshotter.CommitChain).
func (s *store) commitChain(ctx context.Context, links []ChainLink, checkParent func(r *record, parent string) error) (int, error) {
	var dropped []string
	n := 0
	err := s.update(ctx, func(md *metadata) (bool, error) {
		for _, l := range links {
			d, err := s.commitRecord(md, l, checkParent)
			if d != "" {
				dropped = append(dropped, d)
			}
			if err != nil && !errdefs.IsAlreadyExists(err) {
				return n > 0 || len(dropped) > 0, err
			}
			n++
		}
		return true, nil
	})
	for _, d := range dropped {
		err = s.dropCommitted(err, d)
	}
	return n, err
}

// commitRecord commits one link in md. When the name exists already
// (somebody else committed this layer first) the active record is deleted,
// its ID returned as dropped, and the clash reported as ErrAlreadyExists.
func (s *store) commitRecord(md *metadata, l ChainLink, checkParent func(r *record, parent string) error) (dropped string, err error) {
	if l.Name == "" {
		return "", fmt.Errorf("commit %q: empty snapshot name: %w", l.Key, errdefs.ErrInvalidArgument)
	}
	r, err := s.get(md, l.Key)
	if err != nil {
		return "", fmt.Errorf("commit: %w", err)
	}
	if r.Kind != KindActive {
		return "", fmt.Errorf("commit %q: snapshot is not active: %w", l.Key, errdefs.ErrConflict)
	}
	if _, ok := md.Snapshots[l.Name]; ok {
		delete(md.Snapshots, l.Key)
		return r.ID, fmt.Errorf("commit %q: snapshot %q: %w", l.Key, l.Name, errdefs.ErrAlreadyExists)
	}
	if l.Parent != "" {
		if p, ok := md.Snapshots[l.Parent]; !ok || p.Kind != KindCommitted {
			return "", fmt.Errorf("commit %q: parent %q is not a committed snapshot: %w", l.Key, l.Parent, errdefs.ErrNotFound)
		}
	}
	if checkParent != nil {
		if err := checkParent(r, l.Parent); err != nil {
			return "", fmt.Errorf("commit %q: %w", l.Key, err)
		}
	}
	delete(md.Snapshots, l.Key)
	md.Snapshots[l.Name] = &record{ID: r.ID, Kind: KindCommitted, Parent: l.Parent, Created: time.Now().UTC(), Labels: r.Labels}
	return "", nil
}

// dropCommitted removes the directory of an active snapshot whose name was
// committed by somebody else (its record is gone already).
func (s *store) dropCommitted(err error, dropped string) error {
	if dropped == "" {
		return err
	}
	if rerr := os.RemoveAll(s.snapshotDir(dropped)); rerr != nil {
		return errors.Join(err, rerr)
	}
	return err
}

// Remove deletes the record, then the directory; a crash in between leaves
// an orphan directory that Cleanup removes.
func (s *store) Remove(ctx context.Context, key string) error {
	var id string
	err := s.update(ctx, func(md *metadata) (bool, error) {
		r, err := s.get(md, key)
		if err != nil {
			return false, fmt.Errorf("remove: %w", err)
		}
		for child, c := range md.Snapshots {
			if c.Parent == key {
				return false, fmt.Errorf("remove snapshot %q: snapshot %q depends on it: %w", key, child, errdefs.ErrConflict)
			}
		}
		delete(md.Snapshots, key)
		id = r.ID
		return true, nil
	})
	if err != nil {
		return err
	}
	if err := os.RemoveAll(s.snapshotDir(id)); err != nil {
		return fmt.Errorf("remove snapshot %q: %w", key, err)
	}
	return nil
}

// Cleanup removes snapshot directories no record references: half-prepared
// ones (unless their Prepare still runs and holds the directory's lock) and
// half-removed ones.
func (s *store) Cleanup(ctx context.Context) error {
	return s.update(ctx, func(md *metadata) (bool, error) {
		used := map[string]bool{}
		for _, r := range md.Snapshots {
			used[r.ID] = true
		}
		entries, err := os.ReadDir(s.snapshotsDir())
		if err != nil {
			return false, fmt.Errorf("cleanup snapshots: %w", err)
		}
		var errs []error
		for _, e := range entries {
			if used[e.Name()] {
				continue
			}
			d := filepath.Join(s.snapshotsDir(), e.Name())
			l, err := lockDirNB(d)
			if errors.Is(err, syscall.EWOULDBLOCK) {
				continue // a Prepare in progress
			}
			if err := os.RemoveAll(d); err != nil {
				errs = append(errs, err)
			}
			if l != nil {
				l.Close()
			}
		}
		if err := errors.Join(errs...); err != nil {
			return false, fmt.Errorf("cleanup snapshots: %w", err)
		}
		return false, nil
	})
}

// UpperDir is the snapshot's own directory, whatever its kind.
func (s *store) UpperDir(ctx context.Context, key string) (string, error) {
	md, err := s.read()
	if err != nil {
		return "", err
	}
	r, err := s.get(md, key)
	if err != nil {
		return "", err
	}
	return s.fsDir(r.ID), nil
}

// LowerDirs lists the directories of key's committed parents, top first.
func (s *store) LowerDirs(ctx context.Context, key string) ([]string, error) {
	md, err := s.read()
	if err != nil {
		return nil, err
	}
	r, err := s.get(md, key)
	if err != nil {
		return nil, err
	}
	return s.chain(md, r.Parent)
}

// chain returns the fs directories of parent and its ancestors, top first.
func (s *store) chain(md *metadata, parent string) ([]string, error) {
	var dirs []string
	for p := parent; p != ""; {
		r, ok := md.Snapshots[p]
		if !ok {
			return nil, fmt.Errorf("snapshot chain: parent %q: %w", p, errdefs.ErrNotFound)
		}
		if len(dirs) > len(md.Snapshots) {
			return nil, fmt.Errorf("snapshot chain through %q loops: %w", p, errdefs.ErrInvalidArgument)
		}
		dirs = append(dirs, s.fsDir(r.ID))
		p = r.Parent
	}
	return dirs, nil
}

// Usage counts the blocks of the snapshot's own directory, each inode once.
func (s *store) Usage(ctx context.Context, key string) (int64, error) {
	dir, err := s.UpperDir(ctx, key)
	if err != nil {
		return 0, err
	}
	type inode struct{ dev, ino uint64 }
	seen := map[inode]bool{}
	var total int64
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(path, &st); err != nil {
			return &os.PathError{Op: "lstat", Path: path, Err: err}
		}
		in := inode{uint64(st.Dev), st.Ino}
		if !seen[in] {
			seen[in] = true
			total += st.Blocks * 512
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("usage of snapshot %q: %w", key, err)
	}
	return total, nil
}
