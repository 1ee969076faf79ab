package engine

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/berth-dev/berth/internal/liveness"
)

// A RUN step's container has no monitor and no record: the build that
// runs it is its only owner. The step holds state/build/<id>.lock locked
// (flock) for as long as its container and bundle state/build/<id> exist,
// and removes both when the step ends. A build killed with SIGKILL cannot
// do that, but the kernel drops its lock with it: a later build finds the
// lock free, kills and deletes the container through the runtime and
// removes its bundle (reclaimBuildSteps). Liveness is the lock, never a
// pid, so a recycled pid cannot keep a dead step's container alive.

// lockBuildStep creates and locks the lock of a new RUN step and returns
// the step's id. release removes the lock; the caller removes the
// container and bundle before calling it.
func (e *Engine) lockBuildStep() (id string, release func(), err error) {
	dir := e.buildStateDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", nil, fmt.Errorf("build step: %w", err)
	}
	for attempt := 0; ; attempt++ {
		id = "build-" + newID()[:24]
		lockPath := filepath.Join(dir, id+".lock")
		// The lock dies with this process only: its descriptor is
		// close-on-exec, so the runtime and the watcher do not hold it.
		f, err := liveness.Hold(lockPath)
		if (errors.Is(err, fs.ErrExist) || errors.Is(err, liveness.ErrLost)) && attempt < 3 {
			continue // a clash of names, or another build's reclaim won
		}
		if err != nil {
			return "", nil, fmt.Errorf("build step: %w", err)
		}
		return id, func() {
			_ = os.Remove(lockPath)
			f.Close()
		}, nil
	}
}

// reclaimBuildSteps kills and deletes the containers of RUN steps whose
// build is gone (their lock is free) and removes their bundles. A bundle
// without a lock is an orphan too: a live step creates its lock before its
// bundle and removes it after. Errors leave the step for the next try.
func (e *Engine) reclaimBuildSteps(ctx context.Context) {
	dir := e.buildStateDir()
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	locks := map[string]bool{}
	for _, ent := range ents {
		if id, ok := strings.CutSuffix(ent.Name(), ".lock"); ok {
			locks[id] = true
		}
	}
	for _, ent := range ents {
		name := ent.Name()
		if id, ok := strings.CutSuffix(name, ".lock"); ok {
			e.reclaimLockedStep(ctx, id)
			continue
		}
		if ent.IsDir() && strings.HasPrefix(name, "build-") && !locks[name] {
			if _, err := os.Stat(filepath.Join(dir, name+".lock")); errors.Is(err, fs.ErrNotExist) {
				_ = e.removeBuildStep(ctx, name)
			}
		}
	}
}

// reclaimLockedStep reclaims step id if nobody holds its lock.
func (e *Engine) reclaimLockedStep(ctx context.Context, id string) {
	lockPath := filepath.Join(e.buildStateDir(), id+".lock")
	f, ok := liveness.Claim(lockPath)
	if !ok {
		return // a live build holds it, or another build reclaimed it meanwhile
	}
	defer f.Close()
	if e.removeBuildStep(ctx, id) == nil {
		_ = os.Remove(lockPath)
	}
}

// removeBuildStep kills and deletes step id's container, if the runtime
// still knows it, and removes its bundle.
func (e *Engine) removeBuildStep(ctx context.Context, id string) error {
	state := filepath.Join(e.runtimeRoot(), id)
	if _, err := os.Stat(state); err == nil {
		// delete --force kills every process of the container (its
		// cgroup), so nothing of the step survives; the foreground
		// runtime that waited for it then exits on its own. The dead
		// build's watcher may be deleting it at the same time: only a
		// container still there is a failure.
		if err := e.runtime(context.WithoutCancel(ctx), "delete", "--force", id); err != nil {
			if _, serr := os.Stat(state); serr == nil {
				return fmt.Errorf("reclaim build step %s: %w", id, err)
			}
		}
	}
	if err := os.RemoveAll(filepath.Join(e.buildStateDir(), id)); err != nil {
		return fmt.Errorf("reclaim build step %s: %w", id, err)
	}
	return nil
}

// watchBuildStep starts a watcher that kills step id's container as soon
// as this process dies, so a killed build's RUN step does not run on until
// the next build reclaims it. A parent-death signal on the runtime would
// not do: the runtime forwards SIGTERM to the container's init, and an
// init in its own PID namespace ignores every signal it has no handler
// for (sleep handles none), while SIGKILL would kill only the runtime and
// orphan the init. So a process outside the chain watches a
// pipe whose only writer is this process: when the kernel closes it, the
// watcher's read returns and it runs `<runtime> delete --force`. The
// watcher is /bin/sh because the runtime is pluggable (runc, crun) and no
// berth binary has such a verb; where it is missing, reclaimBuildSteps
// still removes the step on the next build. stop ends the watcher without
// it deleting anything.
func (e *Engine) watchBuildStep(id string) (stop func()) {
	r, w, err := os.Pipe() // close-on-exec: no other child holds w
	if err != nil {
		return func() {}
	}
	defer r.Close()
	cmd := exec.Command("/bin/sh", "-c", `read x; exec "$0" --root "$1" delete --force "$2"`, e.opts.Runtime, e.runtimeRoot(), id)
	cmd.Stdin = r
	// Its own session: a Ctrl-C meant for the build must not take the
	// watcher first (the build then cleans up by itself anyway).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		return func() {}
	}
	return func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		w.Close()
	}
}
