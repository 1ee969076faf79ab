package engine

import (
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/moby/moby/api/types/container"
	"golang.org/x/sys/unix"
)

// upperChanges walks an overlayfs upper directory: a 0/0 character device
// is a deletion, an entry a lower layer also has is a change, anything
// else an addition.
func upperChanges(upper string, lowers []string) ([]container.FilesystemChange, error) {
	inLower := func(rel string) bool {
		for _, l := range lowers {
			if _, err := os.Lstat(filepath.Join(l, rel)); err == nil {
				return true
			}
		}
		return false
	}
	var out []container.FilesystemChange
	err := filepath.WalkDir(upper, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == upper {
			return nil
		}
		rel, _ := filepath.Rel(upper, p)
		kind := container.ChangeAdd
		if d.Type()&fs.ModeCharDevice != 0 {
			var st unix.Stat_t
			if unix.Lstat(p, &st) == nil && st.Rdev == 0 {
				kind = container.ChangeDelete
			}
		} else if inLower(rel) {
			kind = container.ChangeModify
		}
		out = append(out, container.FilesystemChange{Kind: kind, Path: "/" + rel})
		if kind == container.ChangeAdd && d.IsDir() {
			// Docker lists an added directory's content as added too.
			return nil
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, err
}
