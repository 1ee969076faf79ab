package build

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/berth-dev/berth/internal/liveness"
	"golang.org/x/sys/unix"
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
			unmountUnder(dir)
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
		unmountUnder(dir)
		if os.RemoveAll(dir) == nil {
			_ = os.Remove(lockPath)
		}
		f.Close()
	}
}

// unmountUnder detaches every mount at or below dir, deepest first.
func unmountUnder(dir string) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return
	}
	defer f.Close()
	var points []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		p := unescapeMountinfo(fields[4])
		if p == dir || strings.HasPrefix(p, dir+"/") {
			points = append(points, p)
		}
	}
	sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
	for _, p := range points {
		_ = unix.Unmount(p, unix.MNT_DETACH)
	}
}

// unescapeMountinfo undoes mountinfo's octal escapes (\040 for a space).
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v byte
			ok := true
			for _, c := range s[i+1 : i+4] {
				if c < '0' || c > '7' {
					ok = false
					break
				}
				v = v*8 + byte(c-'0')
			}
			if ok {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
