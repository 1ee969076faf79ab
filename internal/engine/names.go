package engine

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
)

// Docker-style generated names: adjective_noun, chosen from the ID so a
// name is stable for a given container.
var (
	nameLeft = []string{
		"admiring", "brave", "calm", "clever", "dreamy", "eager", "epic", "festive", "gentle", "happy",
		"hopeful", "jolly", "keen", "loving", "lucid", "modest", "nifty", "peaceful", "quirky", "relaxed",
		"serene", "sharp", "stoic", "sweet", "tender", "upbeat", "vibrant", "wizardly", "youthful", "zealous",
	}
	nameRight = []string{
		"albattani", "babbage", "curie", "darwin", "einstein", "fermi", "galileo", "hopper", "johnson", "kepler",
		"lamport", "lovelace", "mccarthy", "noether", "pascal", "ritchie", "shannon", "thompson", "turing", "wozniak",
		"allen", "bell", "cori", "dijkstra", "euler", "franklin", "goldberg", "hamilton", "knuth", "liskov",
	}
)

func randomName(id string) string {
	n, _ := strconv.ParseUint(id[:8], 16, 64)
	return nameLeft[n%uint64(len(nameLeft))] + "_" + nameRight[(n/uint64(len(nameLeft)))%uint64(len(nameRight))]
}

// The names index, <root>/containers/.names/<name>, holds the ID of the
// container that has each name, so that create, rename and lookups by name
// read one small file instead of every record (create was O(containers)
// under the global lock). Names are valid file names by their grammar.
// The records stay the truth: a claim is trusted only when the record it
// names still has that name (a remove or rename killed halfway leaves a
// stale claim, which counts as free), and a store from before the index
// gets it built from the records on its first create or rename. Claims
// are written under the containers lock, before the record (create) or
// before the record changes (rename), and removed after it.
func (e *Engine) namesDir() string { return filepath.Join(e.containersDir(), ".names") }

func (e *Engine) nameClaim(name string) string { return filepath.Join(e.namesDir(), name) }

// ensureNameIndex builds the index when it is missing. The caller holds the
// containers lock.
func (e *Engine) ensureNameIndex() error {
	if _, err := os.Stat(e.namesDir()); err == nil {
		return nil
	}
	all, err := e.listContainers()
	if err != nil {
		return err
	}
	tmp := e.namesDir() + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return err
	}
	for _, c := range all {
		if err := os.WriteFile(filepath.Join(tmp, c.Name), []byte(c.ID), 0o600); err != nil {
			return err
		}
	}
	return os.Rename(tmp, e.namesDir())
}

// nameOwner returns the container that has name, nil when none. ok is false
// when the index cannot answer (no index yet, an unreadable claim) and
// the caller must look at the records.
func (e *Engine) nameOwner(name string) (c *Container, ok bool) {
	b, err := os.ReadFile(e.nameClaim(name))
	if errors.Is(err, os.ErrNotExist) {
		if _, err := os.Stat(e.namesDir()); err != nil {
			return nil, false
		}
		return nil, true
	}
	if err != nil || !isFullID(string(b)) {
		return nil, false // torn by a power cut: the records decide
	}
	owner, err := e.readContainer(string(b))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, true // removed: a stale claim
		}
		return nil, false
	}
	if owner.Name != name {
		return nil, true // renamed: a stale claim
	}
	return owner, true
}

// claimName records that id has name (containers lock held).
func (e *Engine) claimName(name, id string) error {
	return replaceFile(e.nameClaim(name), []byte(id), 0o600, false)
}

// releaseName drops name's claim if it is id's (containers lock held).
func (e *Engine) releaseName(name, id string) {
	if b, err := os.ReadFile(e.nameClaim(name)); err == nil && string(b) == id {
		_ = os.Remove(e.nameClaim(name))
	}
}

// nameTaken reports the container other than id that has name, if any
// (containers lock held).
func (e *Engine) nameTaken(name, id string) (*Container, error) {
	if err := e.ensureNameIndex(); err != nil {
		return nil, err
	}
	if o, ok := e.nameOwner(name); ok {
		if o != nil && o.ID != id {
			return o, nil
		}
		return nil, nil
	}
	all, err := e.listContainers()
	if err != nil {
		return nil, err
	}
	for _, o := range all {
		if o.Name == name && o.ID != id {
			return o, nil
		}
	}
	return nil, nil
}
