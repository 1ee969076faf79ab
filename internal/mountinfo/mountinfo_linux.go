package mountinfo

import (
	"bytes"
	"errors"
	"os"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Unescape decodes the \ooo octal escapes the kernel writes for space,
// tab, newline and backslash in mountinfo paths.
func Unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// PointsUnder lists the mount points at or below dir (an absolute path
// without symlinks), deepest first and, on one point, newest first: one
// entry per mount, so stacked mounts appear as often as they are stacked.
func PointsUnder(dir string) ([]string, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	type point struct {
		path  string
		order int
	}
	var found []point
	i := 0
	for line := range bytes.Lines(data) {
		i++
		// id parent major:minor root mountpoint ...
		fields := strings.SplitN(string(line), " ", 6)
		if len(fields) < 5 {
			continue
		}
		p := Unescape(fields[4])
		if p == dir || strings.HasPrefix(p, dir+"/") {
			found = append(found, point{p, i})
		}
	}
	sort.Slice(found, func(a, b int) bool {
		if len(found[a].path) != len(found[b].path) {
			return len(found[a].path) > len(found[b].path)
		}
		return found[a].order > found[b].order
	})
	out := make([]string, len(found))
	for k, p := range found {
		out[k] = p.path
	}
	return out, nil
}

// UnmountUnder unmounts every mount at or below dir, deepest first. A busy
// mount (an open file, a process's cwd) is detached instead, and the
// kernel frees it when its last user goes.
func UnmountUnder(dir string) error {
	points, err := PointsUnder(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range points {
		err := unix.Unmount(p, 0)
		if errors.Is(err, unix.EBUSY) {
			err = unix.Unmount(p, unix.MNT_DETACH)
		}
		// EINVAL: no longer a mount point (a detach above took it along).
		if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, &os.PathError{Op: "unmount", Path: p, Err: err})
		}
	}
	return errors.Join(errs...)
}
