package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/monitor"
	"github.com/berth-dev/berth/internal/snapshot"
	"github.com/moby/moby/api/types/events"
	"golang.org/x/sys/unix"
)

// defaultStopTimeout is Docker's grace period between the stop signal and SIGKILL.
const defaultStopTimeout = 10 * time.Second

// lockContainer takes the cross-process lock of one container: start,
// stop, remove and the other state changes of one container run one at a
// time (`rm -f` while `start` runs waits for the start to finish, then
// removes a container that is fully started). It reports NotFound when the
// container was removed while we waited.
func (e *Engine) lockContainer(id string) (func(), error) {
	dir := e.recordDir(id)
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("No such container: %s: %w", id, errdefs.ErrNotFound)
		}
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, "container.json")); err != nil {
		f.Close()
		return nil, fmt.Errorf("No such container: %s: %w", id, errdefs.ErrNotFound)
	}
	return func() { f.Close() }, nil
}

// startSettleTimeout bounds the wait for a monitor that is still starting
// its container (the monitor's own start-up is far quicker).
const startSettleTimeout = 10 * time.Second

// settledState is state, except that it first waits for a monitor still
// starting the container (forked by a start whose CLI was killed: the lock
// of that start went with it) to report the start's outcome. Acting on the
// container meanwhile would race the monitor: a bundle removed under it,
// a container process and cgroup that nobody tracks. Callers hold the
// container's lock.
func (e *Engine) settledState(c *Container) ContainerState {
	deadline := time.Now().Add(startSettleTimeout)
	for {
		st := e.state(c)
		starting := st.MonitorAlive && st.Status == "created" && st.Pid == 0
		if !starting && !st.MonitorAlive {
			_, starting = e.startingMonitor(c.ID)
		}
		if !starting || time.Now().After(deadline) {
			return st
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// updateContainer applies fn to the current record under the containers
// lock, so concurrent updates (rename, pause, a recorded state) do not
// overwrite each other.
func (e *Engine) updateContainer(id string, fn func(c *Container) error) (*Container, error) {
	unlock, err := e.lockContainers()
	if err != nil {
		return nil, err
	}
	defer unlock()
	b, err := os.ReadFile(filepath.Join(e.recordDir(id), "container.json"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("No such container: %s: %w", id, errdefs.ErrNotFound)
		}
		return nil, err
	}
	var c Container
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("container %s: %w", id, err)
	}
	if err := fn(&c); err != nil {
		return nil, err
	}
	return &c, e.writeContainer(&c)
}

// findBinary prefers name beside the running executable (a build tree's
// bin/ is self-consistent), then $PATH.
func findBinary(name string) string {
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	return name
}

// runtimeCmd runs the engine's default runtime with our runtime root: for
// what belongs to no container record (build steps). Operations on a
// container use ctrRuntimeCmd, which honours the runtime it was created
// with.
func (e *Engine) runtimeCmd(ctx context.Context, args ...string) *exec.Cmd {
	return e.ctrRuntimeCmd(ctx, nil, args...)
}

func (e *Engine) runtime(ctx context.Context, args ...string) error {
	return e.ctrRuntime(ctx, nil, args...)
}

// cleanupRuntime removes what a previous run left behind when no monitor
// cleaned it: the runtime's state (killing any process still in it) and
// the rootfs mount. Safe to call repeatedly.
func (e *Engine) cleanupRuntime(ctx context.Context, c *Container) error {
	id := c.ID
	// The network goes first: its leases and rules must not outlive the
	// container, and its teardown works from the CNI cache alone. Modes
	// without CNI (none, host, container:) never have attachments, a
	// namespace of ours or DNS records (network connect refuses them, the
	// mode cannot change), so there is nothing to tear down: skipping it
	// saves the network store's locks and files on every rm.
	if usesCNI(c) {
		if err := e.teardownNetwork(ctx, c); err != nil {
			return fmt.Errorf("network teardown of %s: %w", c.Name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(e.runtimeRoot(), id)); err == nil {
		_ = e.ctrRuntimeCmd(ctx, c, "delete", "--force", id).Run()
	}
	Mark("cleanup: runtime state gone")
	if _, err := os.Lstat(e.rootfsDir(id)); errors.Is(err, os.ErrNotExist) {
		return nil // never started: nothing can be mounted there
	}
	return snapshot.UnmountAll(e.rootfsDir(id))
}

// Start starts a created or stopped container under a new monitor. It
// returns once the workload runs; a workload that cannot start yields an
// *ExitError with Docker's code (127 not found, 126 cannot invoke, 125
// anything else) and leaves nothing running.
func (e *Engine) Start(ctx context.Context, ref string) error {
	Mark("start")
	c, err := e.lookupContainer(ref)
	if err != nil {
		return err
	}
	return e.start(ctx, c)
}

// start is Start for a container already looked up (StartAttached has it).
func (e *Engine) start(ctx context.Context, c *Container) (retErr error) {
	unlock, err := e.lockContainer(c.ID)
	if err != nil {
		return err
	}
	defer unlock()
	st := e.settledState(c)
	switch {
	case st.Status == "running" && st.Paused:
		return fmt.Errorf("cannot start a paused container, try unpause instead: %w", errdefs.ErrConflict)
	case st.Status == "running":
		return nil
	case st.MonitorAlive && st.Status != "exited":
		// Restarting under its monitor's policy.
		return fmt.Errorf("container %s is restarting: %w", c.Name, errdefs.ErrConflict)
	case st.MonitorAlive:
		// The previous monitor recorded the exit and is finishing (its
		// exit command, its sockets): let it go before a new one starts
		// in the same bundle.
		waitExit(st.MonitorPid, 5*time.Second)
	}
	Mark("start: locked")
	// A container that never ran has no rootfs directory yet (Start makes
	// it before anything else), so nothing of a previous run to clean.
	if _, err := os.Lstat(e.rootfsDir(c.ID)); err == nil {
		if err := e.cleanupRuntime(ctx, c); err != nil {
			return fmt.Errorf("start %s: clean previous run: %w", c.Name, err)
		}
	}
	Mark("start: previous run cleaned")
	bundle := e.bundleDir(c.ID)
	for _, f := range []string{"monitor.json", "monitor.pid", "attach.sock", "control.sock"} {
		_ = os.Remove(filepath.Join(bundle, f))
	}
	rootfs := e.rootfsDir(c.ID)
	if err := os.MkdirAll(rootfs, 0o700); err != nil {
		return err
	}
	// The monitor starts (its fork and exec from another thread, then its
	// Go start-up, log and sockets) while we mount the rootfs and write
	// config.json; it runs the runtime only once released below.
	type forkResult struct {
		mon *pendingMonitor
		err error
	}
	forked := make(chan forkResult, 1)
	go func() {
		mon, err := e.forkMonitor(c)
		forked <- forkResult{mon, err}
	}()
	monitor := sync.OnceValues(func() (*pendingMonitor, error) {
		r := <-forked
		return r.mon, r.err
	})
	released := false
	defer func() {
		if mon, err := monitor(); !released && err == nil {
			mon.abort()
		}
	}()
	mounts, err := e.snaps.Mounts(ctx, c.Snapshot)
	if err != nil {
		return fmt.Errorf("start %s: %w", c.Name, err)
	}
	if c.HostConfig.AutoRemove && (c.HostConfig.UsernsMode == "" || c.HostConfig.UsernsMode == "host") {
		mounts = volatileOverlay(mounts)
	}
	if err := snapshot.MountAll(mounts, rootfs); err != nil {
		return fmt.Errorf("mount rootfs of %s: %w", c.Name, err)
	}
	Mark("start: rootfs mounted")
	defer func() {
		if retErr != nil {
			_ = e.cleanupRuntime(context.WithoutCancel(ctx), c)
		}
	}()
	spec, specCleanup, err := e.containerSpec(ctx, c, rootfs)
	if err != nil {
		return err
	}
	defer func() {
		if retErr != nil {
			specCleanup()
		}
	}()
	b, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	if err := writeStateFile(filepath.Join(bundle, "config.json"), b, 0o600); err != nil {
		return err
	}
	Mark("start: config.json written")
	mon, err := monitor()
	if err != nil {
		return err
	}
	released = true
	if err := mon.release(ctx); err != nil {
		return err
	}
	Mark("start: monitor ready")
	if c.Paused || c.LastState != nil {
		_, _ = e.updateContainer(c.ID, func(c *Container) error { c.Paused = false; return nil })
	}
	e.emit(events.ContainerEventType, events.ActionStart, c, nil)
	return nil
}

// parseSize reads Docker's sizes ("10m", "1g", "512k", "100").
func parseSize(s string) (int64, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	for suf, m := range map[string]int64{"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "kb": 1 << 10, "mb": 1 << 20, "gb": 1 << 30, "b": 1} {
		if strings.HasSuffix(s, suf) && len(s) > len(suf) {
			if _, err := strconv.ParseFloat(strings.TrimSuffix(s, suf), 64); err == nil {
				s, mult = strings.TrimSuffix(s, suf), m
				break
			}
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("invalid size %q", s)
	}
	return int64(f * float64(mult)), nil
}

// controlRequest sends one request to the monitor's control socket.
func (e *Engine) controlRequest(id string, req map[string]any) (json.RawMessage, error) {
	conn, err := dialUnix(filepath.Join(e.bundleDir(id), "control.sock"), 2*time.Second)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if err := json.NewEncoder(conn).Encode(req); err != nil {
		return nil, err
	}
	var reply json.RawMessage
	if err := json.NewDecoder(conn).Decode(&reply); err != nil {
		return nil, err
	}
	return reply, nil
}

// Stop stops a running container: the stop signal, a grace period, then
// SIGKILL. A stopped container is left as it is.
func (e *Engine) Stop(ctx context.Context, ref string, opts StopOptions) error {
	c, err := e.lookupContainer(ref)
	if err != nil {
		return err
	}
	unlock, err := e.lockContainer(c.ID)
	if err != nil {
		return err
	}
	defer unlock()
	if err := e.stopLocked(ctx, c, opts); err != nil {
		return err
	}
	e.emit(events.ContainerEventType, events.ActionStop, c, nil)
	return nil
}

func (e *Engine) stopLocked(ctx context.Context, c *Container, opts StopOptions) error {
	st := e.settledState(c)
	if st.MonitorAlive {
		// Marks the stop as the user's: no restart policy applies.
		_, _ = e.controlRequest(c.ID, map[string]any{"op": "stop"})
	}
	if st.Status != "running" {
		return e.finishStopped(ctx, c)
	}
	sig := opts.Signal
	if sig == "" {
		sig = c.Config.StopSignal
	}
	if sig == "" {
		sig = "SIGTERM"
	}
	grace := defaultStopTimeout
	if opts.Timeout != nil {
		grace = time.Duration(*opts.Timeout) * time.Second
	} else if c.Config.StopTimeout != nil {
		grace = time.Duration(*c.Config.StopTimeout) * time.Second
	}
	if err := e.ctrRuntime(ctx, c, "kill", c.ID, sig); err != nil && alive(st.Pid) {
		return fmt.Errorf("stop %s: %w", c.Name, err)
	}
	if st.Paused {
		// A frozen process cannot act on the signal.
		_ = e.ctrRuntime(ctx, c, "resume", c.ID)
	}
	if grace < 0 {
		grace = -1 // wait for ever
	}
	if !waitExit(st.Pid, grace) {
		if err := e.ctrRuntime(ctx, c, "kill", "--all", c.ID, "SIGKILL"); err != nil && alive(st.Pid) {
			return fmt.Errorf("stop %s: %w", c.Name, err)
		}
		if !waitExit(st.Pid, 10*time.Second) {
			return fmt.Errorf("stop %s: process %d did not die after SIGKILL: %w", c.Name, st.Pid, errdefs.ErrUnavailable)
		}
	}
	return e.finishStopped(ctx, c)
}

// finishStopped waits for the monitor to record the exit and clean up, or
// does its work when the monitor is gone, then releases the rootfs mount.
func (e *Engine) finishStopped(ctx context.Context, c *Container) error {
	st, ok := e.readMonitorState(c.ID)
	if !ok {
		return nil
	}
	if alive(st.MonitorPid) {
		if !waitExit(st.MonitorPid, 5*time.Second) {
			// Restart policy backing off, or a stuck monitor: the state
			// on disk is what the next command sees.
			return nil
		}
		st, _ = e.readMonitorState(c.ID)
	}
	if st.Status != "exited" {
		cs := e.state(c)
		if err := e.writeMonitorState(c.ID, cs.State); err != nil {
			return err
		}
		st = cs.State
	}
	e.recordExit(c.ID, st)
	return e.cleanupRuntime(ctx, c)
}

// Kill sends a signal (default SIGKILL) to the container's init.
func (e *Engine) Kill(ctx context.Context, ref, sig string) error {
	c, err := e.lookupContainer(ref)
	if err != nil {
		return err
	}
	st := e.state(c)
	if st.Status != "running" {
		return fmt.Errorf("cannot kill container: %s: container %s is not running: %w", ref, c.ID, errdefs.ErrConflict)
	}
	if sig == "" {
		sig = "SIGKILL"
	}
	if s := strings.ToUpper(strings.TrimPrefix(strings.ToUpper(sig), "SIG")); s == "KILL" || s == "9" {
		if st.MonitorAlive {
			_, _ = e.controlRequest(c.ID, map[string]any{"op": "stop"})
		}
	}
	if err := e.ctrRuntime(ctx, c, "kill", c.ID, sig); err != nil {
		return fmt.Errorf("kill %s: %w", c.Name, err)
	}
	e.emit(events.ContainerEventType, events.ActionKill, c, map[string]string{"signal": sig})
	return nil
}

// Restart stops (when running) and starts a container.
func (e *Engine) Restart(ctx context.Context, ref string, opts StopOptions) error {
	if err := e.Stop(ctx, ref, opts); err != nil {
		return err
	}
	return e.Start(ctx, ref)
}

// Wait blocks until the container is not running and returns its exit code.
// It wakes when the monitor records a change (see stateWatch), when the
// process that matters exits, and every 100 ms to notice a removal.
func (e *Engine) Wait(ctx context.Context, ref string) (int, error) {
	c, err := e.lookupContainer(ref)
	if err != nil {
		return 0, err
	}
	return e.wait(ctx, c, ref)
}

// wait is Wait for a container already looked up; ref is how the caller
// named it, for the error when it is removed meanwhile.
func (e *Engine) wait(ctx context.Context, c *Container, ref string) (int, error) {
	w := e.watchState(c.ID) // before the first look, so no change is missed
	defer w.close()
	for {
		st := e.state(c)
		if st.Status == "created" {
			// Also what a container being removed looks like: an --rm
			// container's monitor removes its state right after the exit
			// it announced to w, whose code is then the answer.
			if ex, ok := w.exited(); ok {
				return ex.ExitCode, nil
			}
			if _, err := os.Stat(e.recordDir(c.ID)); err != nil {
				return 0, fmt.Errorf("No such container: %s: %w", ref, errdefs.ErrNotFound)
			}
		}
		switch st.Status {
		case "exited", "created":
			return st.ExitCode, nil
		}
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		pid := st.MonitorPid
		if !st.MonitorAlive {
			pid = st.Pid
		}
		w.wait(pid, 100*time.Millisecond)
	}
}

// Pause freezes the container's processes.
func (e *Engine) Pause(ctx context.Context, ref string) error {
	return e.setPaused(ctx, ref, true)
}

// Unpause thaws them.
func (e *Engine) Unpause(ctx context.Context, ref string) error {
	return e.setPaused(ctx, ref, false)
}

func (e *Engine) setPaused(ctx context.Context, ref string, pause bool) error {
	c, err := e.lookupContainer(ref)
	if err != nil {
		return err
	}
	unlock, err := e.lockContainer(c.ID)
	if err != nil {
		return err
	}
	defer unlock()
	st := e.state(c)
	if st.Status != "running" {
		return fmt.Errorf("container %s is not running: %w", c.ID, errdefs.ErrConflict)
	}
	if st.Paused == pause {
		if pause {
			return fmt.Errorf("container %s is already paused: %w", c.ID, errdefs.ErrConflict)
		}
		return fmt.Errorf("container %s is not paused: %w", c.ID, errdefs.ErrConflict)
	}
	op, action := "pause", events.ActionPause
	if !pause {
		op, action = "resume", events.ActionUnPause
	}
	if err := e.ctrRuntime(ctx, c, op, c.ID); err != nil {
		return err
	}
	if _, err := e.updateContainer(c.ID, func(c *Container) error { c.Paused = pause; return nil }); err != nil {
		return err
	}
	e.emit(events.ContainerEventType, action, c, nil)
	return nil
}

// Rename gives a container a new name.
func (e *Engine) Rename(ctx context.Context, ref, name string) error {
	c, err := e.lookupContainer(ref)
	if err != nil {
		return err
	}
	name = strings.TrimPrefix(name, "/")
	if !validName(name) {
		return fmt.Errorf("invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed: %w", name, errdefs.ErrInvalidArgument)
	}
	unlock, err := e.lockContainers()
	if err != nil {
		return err
	}
	o, err := e.nameTaken(name, c.ID)
	if err == nil && o != nil {
		err = nameConflict(name, o.ID)
	}
	if err == nil {
		err = e.claimName(name, c.ID)
	}
	old := c.Name
	if err == nil {
		c.Name = name
		err = e.writeContainer(c)
	}
	if err == nil {
		e.releaseName(old, c.ID)
	}
	unlock()
	if err != nil {
		return err
	}
	e.emit(events.ContainerEventType, events.ActionRename, c, map[string]string{"oldName": "/" + old})
	return nil
}

// recordExit keeps the final state in the record, so it survives the loss
// of the state directory (a reboot clears /run).
func (e *Engine) recordExit(id string, st monitor.State) {
	_, _ = e.updateContainer(id, func(c *Container) error { s := st; c.LastState = &s; return nil })
}
