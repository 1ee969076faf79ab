package monitor

import (
	"bytes"
	"errors"
	"os"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// unmountRootfs unmounts every mount at or below dir, deepest and newest
// first (an idmapped or stacked rootfs is several mounts on one point). It
// runs once the init has exited, alongside `runtime delete`: the mounts
// are the engine's, in our namespace; the container's copies die with its
// mount namespace and do not keep ours busy.
// EBUSY (a host process with its cwd inside) falls back to a lazy detach.
func unmountRootfs(dir string) error {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return wrap("unmount rootfs", err)
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
		p := unescapeMountinfo(fields[4])
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
	var errs []error
	for _, p := range found {
		err := unix.Unmount(p.path, 0)
		if err == unix.EBUSY {
			err = unix.Unmount(p.path, unix.MNT_DETACH)
		}
		// EINVAL: no longer a mount point (a detach took it along).
		if err != nil && err != unix.EINVAL && err != unix.ENOENT {
			errs = append(errs, wrap("unmount "+p.path, err))
		}
	}
	return errors.Join(errs...)
}

// unescapeMountinfo undoes the kernel's octal escapes (\040 for a space).
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// openExitLock opens (creating) ExitCommandLock when the monitor starts:
// the file must exist before the container can exit, so that its absence
// later means the container was removed.
func (m *monitor) openExitLock() {
	if len(m.o.ExitCommand) == 0 || m.o.ExitCommandLock == "" {
		return
	}
	f, err := os.OpenFile(m.o.ExitCommandLock, os.O_RDONLY|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err == nil {
		m.exitLock = f
	}
}

// runExitCommand runs Options.ExitCommand unless another process holds
// ExitCommandLock, or its file is gone: an attached `run --rm` holds it
// shared until it has removed the container, bundle and lock file
// included. The monitor's sockets are gone and monitor.json says "exited"
// by then, so the command (`berth rm`) sees a stopped container whose
// monitor is only finishing.
func (m *monitor) runExitCommand() {
	if len(m.o.ExitCommand) == 0 {
		return
	}
	if f := m.exitLock; f != nil {
		defer f.Close()
		if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == unix.EWOULDBLOCK {
			mark("exit command left to the lock holder")
			return
		}
		if _, err := os.Stat(m.o.ExitCommandLock); os.IsNotExist(err) {
			mark("exit command: removed meanwhile")
			return
		}
	}
	mark("exit command")
	_, ch, err := m.r.spawn(m.o.ExitCommand, nil, nil, nil)
	if err != nil {
		return
	}
	<-ch
	mark("exit command done")
}
