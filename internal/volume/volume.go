// Package volume stores named volumes: directories under <root>/volumes that
// outlive containers. Each volume is <root>/volumes/<name>/ holding meta.json
// (its record, written atomically) and _data (what containers mount), the
// layout Docker's local driver uses, so `volume inspect`'s Mountpoint is a
// path users already know how to read.
//
// The store knows nothing about containers: which volumes are in use is
// derived by the engine from container records, so there is no reference
// count on disk that a killed process could leave wrong. Mutations take one
// cross-process flock (<root>/volumes/.lock); the engine holds it (Lock)
// around "check no container uses it, then remove" so two commands cannot
// interleave those steps.
package volume

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"time"

	"github.com/berth-dev/berth/internal/atomicfile"
	"github.com/berth-dev/berth/internal/errdefs"
)

// DriverLocal is the only driver: a directory on the host, optionally with a
// filesystem mounted on it (Options type/device/o, as Docker's local driver).
const DriverLocal = "local"

// LabelAnonymous marks volumes created for `-v /path` (Docker's label).
const LabelAnonymous = "com.docker.volume.anonymous"

// validName is Docker's volume name rule.
var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// Volume is a volume's record (meta.json).
type Volume struct {
	Name       string
	Driver     string
	Mountpoint string
	CreatedAt  time.Time
	Labels     map[string]string
	Options    map[string]string
}

// Anonymous reports whether the volume was created for an anonymous `-v /path`.
func (v *Volume) Anonymous() bool {
	_, ok := v.Labels[LabelAnonymous]
	return ok
}

// CreateOptions describe a new volume.
type CreateOptions struct {
	Driver  string
	Labels  map[string]string
	Options map[string]string
}

// Store is the volume store under one directory.
type Store struct {
	dir string
}

// Open opens (creating if needed) the store at dir (<root>/volumes).
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o701); err != nil {
		return nil, fmt.Errorf("volume store: %w", err)
	}
	return &Store{dir: dir}, nil
}

// Dir is the store's directory.
func (s *Store) Dir() string { return s.dir }

// ValidateName checks a volume name against Docker's rule.
func ValidateName(name string) error {
	if !validName.MatchString(name) {
		return fmt.Errorf("%q includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path: %w", name, errdefs.ErrInvalidArgument)
	}
	return nil
}

// validateOptions accepts the local driver's options: none, or a filesystem
// to mount (type, device, o).
func validateOptions(driver string, opts map[string]string) error {
	if driver != "" && driver != DriverLocal {
		return fmt.Errorf("volume driver %q: only %q is available: %w", driver, DriverLocal, errdefs.ErrNotSupported)
	}
	for k := range opts {
		switch k {
		case "type", "device", "o":
		default:
			return fmt.Errorf("invalid option key: %q: %w", k, errdefs.ErrInvalidArgument)
		}
	}
	if len(opts) > 0 && opts["device"] == "" {
		return fmt.Errorf("missing required option: \"device\": %w", errdefs.ErrInvalidArgument)
	}
	return nil
}

// Create makes a volume, or returns the existing one of that name (created
// reports which), as Docker does: `volume create x` twice is not an error.
// An existing volume with another driver is a conflict.
func (s *Store) Create(name string, o CreateOptions) (v *Volume, created bool, err error) {
	if err := ValidateName(name); err != nil {
		return nil, false, err
	}
	if err := validateOptions(o.Driver, o.Options); err != nil {
		return nil, false, err
	}
	unlock, err := s.Lock()
	if err != nil {
		return nil, false, err
	}
	defer unlock()
	if v, err := s.get(name); err == nil {
		if o.Driver != "" && o.Driver != v.Driver {
			return nil, false, fmt.Errorf("create %s: volume name is already in use with driver %q: %w", name, v.Driver, errdefs.ErrConflict)
		}
		return v, false, nil
	} else if !errdefs.IsNotFound(err) {
		return nil, false, err
	}
	v = &Volume{
		Name:       name,
		Driver:     DriverLocal,
		Mountpoint: filepath.Join(s.dir, name, "_data"),
		CreatedAt:  time.Now().UTC().Truncate(time.Second),
		Labels:     nonNil(o.Labels),
		Options:    nonNil(o.Options),
	}
	// _data first, record last: a create killed in between leaves a
	// directory without meta.json, which readers ignore and the next
	// create of that name reuses.
	if err := os.MkdirAll(v.Mountpoint, 0o755); err != nil {
		return nil, false, fmt.Errorf("create volume %s: %w", name, err)
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, false, err
	}
	if err := atomicfile.Write(filepath.Join(s.dir, name, "meta.json"), b, 0o600, atomicfile.SyncFile); err != nil {
		return nil, false, fmt.Errorf("create volume %s: %w", name, err)
	}
	return v, true, nil
}

func nonNil(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Get returns the named volume.
func (s *Store) Get(name string) (*Volume, error) { return s.get(name) }

func (s *Store) get(name string) (*Volume, error) {
	if !validName.MatchString(name) {
		return nil, fmt.Errorf("get %s: no such volume: %w", name, errdefs.ErrNotFound)
	}
	b, err := os.ReadFile(filepath.Join(s.dir, name, "meta.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("get %s: no such volume: %w", name, errdefs.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get volume %s: %w", name, err)
	}
	var v Volume
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("volume %s: corrupt record: %w", name, err)
	}
	// The store may have moved (a copied root): the path is derived.
	v.Mountpoint = filepath.Join(s.dir, name, "_data")
	return &v, nil
}

// List returns every volume, sorted by name.
func (s *Store) List() ([]*Volume, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	var out []*Volume
	for _, ent := range ents {
		if !ent.IsDir() {
			continue
		}
		if v, err := s.get(ent.Name()); err == nil {
			out = append(out, v)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Remove deletes a volume and its data. The caller holds Lock and has
// checked that no container uses it. A filesystem mounted on _data (Options)
// is unmounted first.
func (s *Store) Remove(name string) error {
	if _, err := s.get(name); err != nil {
		return err
	}
	dir := filepath.Join(s.dir, name)
	if err := unmountData(filepath.Join(dir, "_data")); err != nil {
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	// The record goes first: a removal killed halfway leaves an unnamed
	// directory, never a volume whose data is half gone.
	if err := os.Remove(filepath.Join(dir, "meta.json")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	return nil
}

// Lock takes the store's cross-process lock; call the returned func to release.
func (s *Store) Lock() (func(), error) { return flock(filepath.Join(s.dir, ".lock")) }
