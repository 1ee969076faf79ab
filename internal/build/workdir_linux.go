package build

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth/internal/liveness"
	"github.com/berth-dev/berth/internal/mountinfo"
)

// workDir makes this build's scratch directory, <root>/build-cache/tmp/<id>
// (mount points of steps, an unpacked tar context, layers in the making),
// and holds <id>.lock beside it locked for the build's life. A build that
// ends normally removes both. One killed with SIGKILL leaves them, its
// overlay mounts still on the directory; the next build finds the lock
// free and reclaims them (reclaimStale), after which image GC can remove
// the snapshots those mounts used.
func (b *Builder) workDir() (dir string, release func(), err error) {
	tmp := filepath.Join(cacheDir(b.Root), "tmp")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return "", nil, fmt.Errorf("build: %w", err)
	}
	reclaimStale(tmp)
	for attempt := 0; ; attempt++ {
		id := randomID()
		lockPath := filepath.Join(tmp, id+".lock")
		f, err := liveness.Hold(lockPath)
		if (errors.Is(err, fs.ErrExist) || errors.Is(err, liveness.ErrLost)) && attempt < 3 {
			continue // a clash of names, or another build's reclaim won
		}
		if err != nil {
			return "", nil, fmt.Errorf("build: %w", err)
		}
		dir = filepath.Join(tmp, id)
		if err := os.Mkdir(dir, 0o700); err != nil {
			os.Remove(lockPath)
			f.Close()
			return "", nil, fmt.Errorf("build: %w", err)
		}
		return dir, func() {
			_ = mountinfo.UnmountUnder(dir)
			_ = os.RemoveAll(dir)
			_ = os.Remove(lockPath)
			f.Close()
		}, nil
	}
}

// reclaimStale removes the work directories of builds that are gone: a
// lock nobody holds. Errors are ignored; the next build tries again.
func reclaimStale(tmp string) {
	locks, _ := filepath.Glob(filepath.Join(tmp, "*.lock"))
	for _, lockPath := range locks {
		f, ok := liveness.Claim(lockPath)
		if !ok {
			continue // a live build holds it
		}
		dir := strings.TrimSuffix(lockPath, ".lock")
		_ = mountinfo.UnmountUnder(dir)
		if os.RemoveAll(dir) == nil {
			_ = os.Remove(lockPath)
		}
		f.Close()
	}
}
