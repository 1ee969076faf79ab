package monitor

import (
	"os"

	"github.com/berth-dev/berth/internal/mountinfo"
	"golang.org/x/sys/unix"
)

// unmountRootfs unmounts every mount at or below dir, deepest and newest
// first (an idmapped or stacked rootfs is several mounts on one point). It
// runs once the init has exited, alongside `runtime delete`: the mounts
// are the engine's, in our namespace; the container's copies die with its
// mount namespace and do not keep ours busy.
// EBUSY (a host process with its cwd inside) falls back to a lazy detach.
func unmountRootfs(dir string) error {
	if err := mountinfo.UnmountUnder(dir); err != nil {
		return wrap("unmount rootfs", err)
	}
	return nil
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
