package engine

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/berth-dev/berth/internal/atomicfile"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/reference"
	"golang.org/x/sys/unix"
)

// validName is Docker's container name rule, [a-zA-Z0-9][a-zA-Z0-9_.-]*,
// checked by hand: a regexp compiled at init costs every berth command.
func validName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case i > 0 && (c == '_' || c == '.' || c == '-'):
		default:
			return false
		}
	}
	return s != ""
}

func (e *Engine) containersDir() string { return filepath.Join(e.opts.Root, "containers") }

// lockContainers takes the cross-process lock that serializes container
// record mutations (names are unique across processes).
func (e *Engine) lockContainers() (func(), error) {
	if err := os.MkdirAll(e.containersDir(), 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(e.containersDir(), ".lock"), os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}

func newID() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// addContainer writes a new record, refusing a duplicate name.
func (e *Engine) addContainer(c *Container) error {
	unlock, err := e.lockContainers()
	if err != nil {
		return err
	}
	defer unlock()
	o, err := e.nameTaken(c.Name, c.ID)
	if err != nil {
		return err
	}
	if o != nil {
		return nameConflict(c.Name, o.ID)
	}
	if err := e.claimName(c.Name, c.ID); err != nil {
		return err
	}
	return e.storeContainer(c, false)
}

func nameConflict(name, owner string) error {
	return fmt.Errorf("the container name %q is already in use by container %q. You have to remove (or rename) that container to be able to reuse that name: %w", "/"+name, owner, errdefs.ErrConflict)
}

// writeContainer replaces c's record atomically and durably (fsync): an
// update of a record that exists must not be lost to a power cut.
func (e *Engine) writeContainer(c *Container) error {
	return e.storeContainer(c, true)
}

// storeContainer writes c's record; durable=false skips the fsync, which
// is what a new record needs: rename(2) alone makes it atomic for every
// reader and survives a kill -9 of any process (the page cache is the
// kernel's, not ours). Only a power cut within the filesystem's commit
// interval can lose it, and then the container's snapshot is an orphan
// that snapshot Cleanup removes — the same as a create killed halfway.
func (e *Engine) storeContainer(c *Container, durable bool) error {
	dir := filepath.Join(e.containersDir(), c.ID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return replaceFile(filepath.Join(dir, "container.json"), b, 0o600, durable)
}

// listContainers reads every record; a directory without a readable record
// (a create killed before its first write) is skipped.
func (e *Engine) listContainers() ([]*Container, error) {
	ents, err := os.ReadDir(e.containersDir())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []*Container
	for _, ent := range ents {
		if !ent.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(e.containersDir(), ent.Name(), "container.json"))
		if err != nil {
			continue
		}
		var c Container
		if json.Unmarshal(b, &c) == nil && c.ID == ent.Name() {
			out = append(out, &c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, nil
}

// lookupContainer finds a container by full ID, unique ID prefix or name.
// A full ID reads just its record (the path every command after create
// takes); the others read them all.
func (e *Engine) lookupContainer(ref string) (*Container, error) {
	ref = strings.TrimPrefix(ref, "/")
	noRecord := false
	if isFullID(ref) {
		c, err := e.readContainer(ref)
		if err == nil {
			return c, nil
		}
		noRecord = errors.Is(err, os.ErrNotExist)
	}
	if validName(ref) {
		c, ok := e.nameOwner(ref)
		if ok && c != nil {
			return c, nil
		}
		if ok && noRecord {
			// A full ID with no record and no container by that name:
			// the scan below could only find that ID again. This is
			// the rm of a container already removed (run --rm), which
			// must not read every record of a large store.
			return nil, fmt.Errorf("No such container: %s: %w", ref, errdefs.ErrNotFound)
		}
	}
	all, err := e.listContainers()
	if err != nil {
		return nil, err
	}
	var hits []*Container
	for _, c := range all {
		if c.ID == ref || c.Name == ref {
			return c, nil
		}
		if strings.HasPrefix(c.ID, ref) {
			hits = append(hits, c)
		}
	}
	switch len(hits) {
	case 1:
		return hits[0], nil
	case 0:
		return nil, fmt.Errorf("No such container: %s: %w", ref, errdefs.ErrNotFound)
	}
	return nil, fmt.Errorf("multiple containers match %q: %w", ref, errdefs.ErrInvalidArgument)
}

// isFullID reports whether s has the form of a container ID (64 lowercase
// hex digits, the same form as an image ID). Docker, too, looks full IDs
// up before names.
func isFullID(s string) bool { return reference.IsIdentifier(s) }

// readContainer reads one record by full ID.
func (e *Engine) readContainer(id string) (*Container, error) {
	b, err := os.ReadFile(filepath.Join(e.containersDir(), id, "container.json"))
	if err != nil {
		return nil, err
	}
	var c Container
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, err
	}
	if c.ID != id {
		return nil, fmt.Errorf("record of %s names %s: %w", id, c.ID, errdefs.ErrNotFound)
	}
	return &c, nil
}

// imageInUse reports whether any container uses the image.
func (e *Engine) imageInUse(id string) bool {
	all, _ := e.listContainers()
	for _, c := range all {
		if c.ImageID == id {
			return true
		}
	}
	return false
}

// writeFileAtomic replaces path with data: a crash leaves the old or the
// new file, a power cut included (fsync before the rename).
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	return replaceFile(path, data, mode, true)
}

// writeStateFile replaces a file of the state directory (config.json,
// health.json): atomic for readers, no fsync. The state directory is
// /run (tmpfs) in a normal setup and describes live processes that a
// power cut ends anyway.
func writeStateFile(path string, data []byte, mode os.FileMode) error {
	return replaceFile(path, data, mode, false)
}

// replaceFile writes data to a temporary file beside path and renames it
// over path; durable adds the fsync of the data a power cut needs (the
// directory is not synced: a lost rename leaves the old record).
func replaceFile(path string, data []byte, mode os.FileMode, durable bool) error {
	if durable {
		return atomicfile.Write(path, data, mode, atomicfile.SyncFile)
	}
	return atomicfile.Write(path, data, mode)
}
