package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/moby/moby/api/types/events"
	"golang.org/x/sys/unix"
)

// Remove deletes a container: it stops nothing unless forced, then removes
// the runtime state, rootfs mount, bundle, snapshot, logs and record.
func (e *Engine) Remove(ctx context.Context, ref string, opts RemoveOptions) error {
	c, err := e.lookupContainer(ref)
	if err != nil {
		return err
	}
	return e.remove(ctx, c, opts)
}

func (e *Engine) remove(ctx context.Context, c *Container, opts RemoveOptions) error {
	Mark("remove")
	defer Mark("remove: done")
	unlock, err := e.lockContainer(c.ID)
	if err != nil {
		return err
	}
	defer unlock()
	st := e.settledState(c)
	// A monitor that recorded "exited" is only finishing (its exit
	// command may be this very removal): the container is stopped.
	finishing := st.MonitorAlive && st.Status == "exited"
	if st.Status == "running" || st.MonitorAlive && st.Status != "exited" {
		finishing = false // the forced stop below waits for the monitor
		if !opts.Force {
			what := "running"
			if st.Paused {
				what = "paused"
			} else if st.Status == "restarting" {
				what = "restarting"
			}
			return fmt.Errorf("cannot remove container %q: container is %s: stop the container before removing or force remove: %w", "/"+c.Name, what, errdefs.ErrConflict)
		}
		zero := 0
		if err := e.stopLocked(ctx, c, StopOptions{Signal: "SIGKILL", Timeout: &zero}); err != nil {
			return err
		}
		if st2, ok := e.readMonitorState(c.ID); ok && alive(st2.MonitorPid) {
			_ = unix.Kill(st2.MonitorPid, unix.SIGKILL)
			waitExit(st2.MonitorPid, 2*time.Second)
		}
	}
	// A monitor that recorded the final exit may still run `runtime
	// delete` (see internal/monitor): the snapshot, which nothing uses any
	// more, goes meanwhile; the runtime's state and the bundle once the
	// monitor is done with them.
	var snapErr chan error
	if finishing {
		if e.snapshotUnused(c) {
			snapErr = make(chan error, 1)
			go func() { snapErr <- e.snaps.Remove(ctx, c.Snapshot) }()
		}
		e.awaitRuntimeDeleted(c.ID, st.MonitorPid)
		Mark("remove: monitor done with the runtime")
	}
	if err := e.cleanupRuntime(ctx, c); err != nil {
		if snapErr != nil {
			<-snapErr
		}
		return fmt.Errorf("remove %s: %w", c.Name, err)
	}
	Mark("remove: runtime cleaned")
	// The bundle (state directory) and the snapshot (store) are unrelated
	// trees, unmounted by now: remove them side by side, each is mostly
	// unlink and rmdir. The record goes last, once both are gone, so a
	// removal cut short leaves a container that rm can retry.
	bundleErr := make(chan error, 1)
	go func() { bundleErr <- os.RemoveAll(e.bundleDir(c.ID)) }()
	var serr error
	if snapErr != nil {
		serr = <-snapErr
	} else {
		serr = e.snaps.Remove(ctx, c.Snapshot)
	}
	Mark("remove: snapshot removed")
	if err := <-bundleErr; err != nil {
		return err
	}
	Mark("remove: bundle removed")
	if serr != nil && !errdefs.IsNotFound(serr) {
		return fmt.Errorf("remove %s: %w", c.Name, serr)
	}
	if opts.Volumes && hasAnonymousVolumes(c) {
		if err := e.removeAnonymousVolumes(ctx, c); err != nil {
			return err
		}
	}
	lock, err := e.lockContainers()
	if err != nil {
		return err
	}
	defer lock()
	if err := os.RemoveAll(e.recordDir(c.ID)); err != nil {
		return err
	}
	e.releaseName(c.Name, c.ID)
	e.emit(events.ContainerEventType, events.ActionDestroy, c, nil)
	return nil
}

// hasAnonymousVolumes tells whether `rm -v` has volumes to look at: the
// volume store's lock and its scan of every container's mounts are for
// containers that made some (run --rm passes -v for all of them).
func hasAnonymousVolumes(c *Container) bool {
	mps, err := containerMounts(c)
	if err != nil {
		return false // a record we cannot parse never created volumes
	}
	for _, m := range mps {
		if m.Anonymous {
			return true
		}
	}
	return false
}

// runtimeDeleteTimeout bounds the wait for a finishing monitor's `runtime
// delete`; a monitor that takes longer (or failed) leaves the delete to
// cleanupRuntime.
const runtimeDeleteTimeout = 5 * time.Second

// awaitRuntimeDeleted waits until the runtime's state of id is gone (the
// monitor's `runtime delete` finished) or the monitor exited. It cannot
// wait for the monitor's exit alone: the monitor may be running its exit
// command, which is this very removal.
func (e *Engine) awaitRuntimeDeleted(id string, monitorPid int) {
	state := filepath.Join(e.runtimeRoot(), id)
	deadline := time.Now().Add(runtimeDeleteTimeout)
	for {
		if _, err := os.Lstat(state); err != nil || !alive(monitorPid) || time.Now().After(deadline) {
			return
		}
		// `runtime delete` takes a few ms: poll at a fraction of that.
		time.Sleep(500 * time.Microsecond)
	}
}

// snapshotUnused tells whether c's snapshot can be removed while the
// monitor still deletes the runtime's container: the rootfs is no longer
// mounted here (the monitor unmounts before it records the final exit),
// and the container had its own pid namespace, so every process that could
// still use the rootfs died with its init (the kernel kills the namespace's
// other processes before the init's exit is reported). A container in the
// host's or another's pid namespace may leave processes that only
// `runtime delete` kills.
func (e *Engine) snapshotUnused(c *Container) bool {
	if !c.HostConfig.PidMode.IsPrivate() {
		return false
	}
	var rootfs, bundle unix.Stat_t
	if err := unix.Lstat(e.rootfsDir(c.ID), &rootfs); err != nil {
		return false
	}
	if err := unix.Lstat(e.bundleDir(c.ID), &bundle); err != nil {
		return false
	}
	// A mount point has its filesystem's device, not its parent's.
	return rootfs.Dev == bundle.Dev
}
