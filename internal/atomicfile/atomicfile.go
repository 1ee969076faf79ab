// Package atomicfile replaces small files so that a reader, or a restart
// after a crash, sees the old contents or the new ones and never a mix.
//
// Write puts the data in a temporary file beside the target (same
// directory, so same filesystem: rename(2) is atomic only within one) and
// renames it over the target. The temporary name is unique per call, so
// concurrent writers of one path never share a temporary file; the last
// rename wins.
//
// How much survives a power cut is the caller's choice, because the fsyncs
// cost milliseconds that files describing live processes (on tmpfs) or
// hints checked on every read do not need:
//
//   - no option: no fsync. Atomic for readers and for a killed process;
//     after a power cut the file may be empty or torn.
//   - SyncFile: fsync the data before the rename, so the name never points
//     at data that is not on disk. A power cut may still undo the rename
//     and leave the old file.
//   - Durable: SyncFile plus an fsync of the directory, so the rename
//     itself is on disk when Write returns.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// Option selects how durable a Write is. The strongest option given wins.
type Option int

const (
	// SyncFile fsyncs the temporary file before the rename.
	SyncFile Option = iota + 1
	// Durable fsyncs the temporary file and, after the rename, its directory.
	Durable
)

// TempGlob is the filepath.Match pattern of the temporary files Write
// creates for path: a store that knows no writer is running (it holds
// the writers' lock) may remove what matches, a killed writer's leftovers.
func TempGlob(path string) string {
	return filepath.Join(filepath.Dir(path), tempPrefix(path)+"*")
}

func tempPrefix(path string) string { return "." + filepath.Base(path) + ".tmp-" }

// Write replaces path with data and gives it mode perm (exactly: the
// umask does not apply). On error path is untouched and no temporary file
// is left behind.
func Write(path string, data []byte, perm os.FileMode, opts ...Option) (retErr error) {
	var level Option
	for _, o := range opts {
		level = max(level, o)
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, tempPrefix(path))
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	renamed := false
	defer func() {
		if retErr != nil && !renamed {
			f.Close() // a second Close after the first only returns ErrClosed
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	// CreateTemp made the file 0600; the target gets its mode before the
	// rename publishes it, so no reader sees it with the wrong one.
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if level >= SyncFile {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("write %s: fsync: %w", path, err)
		}
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	// From here tmp is the target's name: a failed directory fsync must
	// not remove it, nor another writer's temporary file that took the
	// freed name.
	renamed = true
	if level >= Durable {
		if err := SyncDir(dir); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	return nil
}

// SyncDir fsyncs directory dir, making the renames, creations and removals
// of its entries durable: fsync of a file covers its data, not its name.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("fsync directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	return nil
}
