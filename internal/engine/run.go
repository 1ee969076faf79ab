package engine

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/snapshot"
	"github.com/moby/moby/api/types/container"
	"golang.org/x/sys/unix"
)

// CreateOptions describe a new container (Docker's create request).
type CreateOptions struct {
	Name       string
	Config     container.Config
	HostConfig container.HostConfig
}

// Create makes a container from an image already in the store: its record
// and its writable snapshot. Nothing runs yet.
func (e *Engine) Create(ctx context.Context, opts CreateOptions) (_ *Container, retErr error) {
	img, err := e.images.Get(ctx, opts.Config.Image)
	if err != nil {
		return nil, err
	}
	icfg, err := e.images.Config(ctx, img)
	if err != nil {
		return nil, err
	}
	c := &Container{
		ID:         newID(),
		Name:       strings.TrimPrefix(opts.Name, "/"),
		Created:    time.Now().UTC(),
		ImageRef:   opts.Config.Image,
		ImageID:    img.ID.String(),
		Config:     opts.Config,
		HostConfig: opts.HostConfig,
		Driver:     e.snaps.Driver(),
	}
	c.Snapshot = c.ID
	if c.Name == "" {
		c.Name = randomName(c.ID)
	} else if !validName.MatchString(c.Name) {
		return nil, fmt.Errorf("invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed: %w", c.Name, errdefs.ErrInvalidArgument)
	}
	// The image's config supplies what the request leaves out, as in Docker:
	// env merged (request wins), entrypoint and cmd, workdir, user.
	cfg := &c.Config
	cfg.Env = mergeEnv(icfg.Config.Env, cfg.Env)
	if cfg.Entrypoint == nil {
		cfg.Entrypoint = icfg.Config.Entrypoint
		if len(cfg.Cmd) == 0 {
			cfg.Cmd = icfg.Config.Cmd
		}
	} else if len(cfg.Entrypoint) == 1 && cfg.Entrypoint[0] == "" {
		// --entrypoint "" clears the image's entrypoint.
		cfg.Entrypoint = nil
	}
	if cfg.WorkingDir == "" {
		cfg.WorkingDir = icfg.Config.WorkingDir
	}
	if cfg.User == "" {
		cfg.User = icfg.Config.User
	}
	if cfg.Hostname == "" {
		cfg.Hostname = c.ID[:12]
	}
	if cfg.Labels == nil {
		cfg.Labels = map[string]string{}
	}
	for k, v := range icfg.Config.Labels {
		if _, ok := cfg.Labels[k]; !ok {
			cfg.Labels[k] = v
		}
	}
	if len(cfg.Entrypoint)+len(cfg.Cmd) == 0 {
		return nil, fmt.Errorf("no command specified: %w", errdefs.ErrInvalidArgument)
	}
	if _, err := e.snaps.Prepare(ctx, c.Snapshot, img.ChainID.String(), map[string]string{"berth.container": c.ID}); err != nil {
		return nil, fmt.Errorf("create %s: %w", c.Name, err)
	}
	defer func() {
		if retErr != nil {
			_ = e.snaps.Remove(context.WithoutCancel(ctx), c.Snapshot)
		}
	}()
	generated := opts.Name == ""
	for i := 2; ; i++ {
		err := e.addContainer(c)
		if err == nil {
			return c, nil
		}
		if !generated || !errdefs.IsConflict(err) || i > 100 {
			return nil, err
		}
		c.Name = randomName(c.ID) + "_" + strconv.Itoa(i)
	}
}

// mergeEnv overlays over on base by variable name, keeping base's order.
func mergeEnv(base, over []string) []string {
	out := append([]string{}, base...)
	for _, kv := range over {
		k, _, _ := strings.Cut(kv, "=")
		replaced := false
		for i, b := range out {
			if bk, _, _ := strings.Cut(b, "="); bk == k {
				out[i], replaced = kv, true
			}
		}
		if !replaced {
			out = append(out, kv)
		}
	}
	return out
}

// ExitError carries a container's exit status (or Docker's 126/127 when the
// command could not be started).
type ExitError struct {
	Code int
	Msg  string
}

func (e *ExitError) Error() string {
	if e.Msg != "" {
		return e.Msg
	}
	return fmt.Sprintf("exit status %d", e.Code)
}

// RunForeground starts container ref with the caller's stdio and waits for
// it. It returns nil for exit status 0, an *ExitError otherwise.
func (e *Engine) RunForeground(ctx context.Context, ref string, stdin io.Reader, stdout, stderr io.Writer) (retErr error) {
	c, err := e.lookupContainer(ref)
	if err != nil {
		return err
	}
	bundle := filepath.Join(e.opts.State, "containers", c.ID)
	rootfs := filepath.Join(bundle, "rootfs")
	if err := os.MkdirAll(rootfs, 0o700); err != nil {
		return err
	}
	mounts, err := e.snaps.Mounts(ctx, c.Snapshot)
	if err != nil {
		return err
	}
	if err := snapshot.MountAll(mounts, rootfs); err != nil {
		return fmt.Errorf("mount rootfs of %s: %w", c.Name, err)
	}
	defer func() {
		if err := snapshot.UnmountAll(rootfs); err != nil && retErr == nil {
			retErr = err
		}
	}()
	spec, err := buildSpec(c, rootfs)
	if err != nil {
		return err
	}
	b, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(bundle, "config.json"), b, 0o600); err != nil {
		return err
	}
	logPath := filepath.Join(bundle, "runtime.log")
	_ = os.Remove(logPath)
	rtRoot := filepath.Join(e.opts.State, "runtime")
	// A stale runtime record (a crashed earlier run) would make create fail.
	if _, err := os.Stat(filepath.Join(rtRoot, c.ID)); err == nil {
		_ = exec.Command(e.opts.Runtime, "--root", rtRoot, "delete", "--force", c.ID).Run()
	}

	cmd := exec.CommandContext(ctx, e.opts.Runtime, "--root", rtRoot, "--log", logPath, "--log-format", "json",
		"run", "--bundle", bundle, c.ID)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	// Signals the user sends to us go to the runtime, which forwards them
	// to the container; we must not die of them first.
	sigc := make(chan os.Signal, 8)
	signal.Notify(sigc, unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT)
	defer signal.Stop(sigc)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start runtime %s: %w", e.opts.Runtime, err)
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigc:
				_ = cmd.Process.Signal(s)
			case <-done:
				return
			}
		}
	}()
	err = cmd.Wait()
	close(done)
	if err == nil {
		return nil
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return err
	}
	code := ee.ExitCode()
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		code = 128 + int(ws.Signal())
	}
	if msg := lastRuntimeError(logPath); msg != "" {
		// The runtime failed before the workload ran: map the cause to
		// Docker's exit codes.
		switch {
		case strings.Contains(msg, "executable file not found"), strings.Contains(msg, "no such file or directory"):
			return &ExitError{Code: 127, Msg: msg}
		case strings.Contains(msg, "permission denied"), strings.Contains(msg, "is a directory"):
			return &ExitError{Code: 126, Msg: msg}
		}
		return &ExitError{Code: 125, Msg: msg}
	}
	return &ExitError{Code: code}
}

// lastRuntimeError returns the last error the runtime logged (JSON lines).
func lastRuntimeError(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	var last string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var rec struct{ Level, Msg string }
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Level == "error" {
			last = rec.Msg
		}
	}
	return last
}

// Remove deletes a container: its runtime state, rootfs mount, snapshot and record.
func (e *Engine) Remove(ctx context.Context, ref string, force bool) error {
	c, err := e.lookupContainer(ref)
	if err != nil {
		return err
	}
	rtRoot := filepath.Join(e.opts.State, "runtime")
	if force {
		_ = exec.Command(e.opts.Runtime, "--root", rtRoot, "delete", "--force", c.ID).Run()
	} else if out, err := exec.Command(e.opts.Runtime, "--root", rtRoot, "state", c.ID).Output(); err == nil {
		var st struct{ Status string }
		if json.Unmarshal(out, &st) == nil && (st.Status == "running" || st.Status == "paused") {
			return fmt.Errorf("cannot remove container %q: container is %s: stop the container before removing or force remove: %w", c.Name, st.Status, errdefs.ErrConflict)
		}
		_ = exec.Command(e.opts.Runtime, "--root", rtRoot, "delete", c.ID).Run()
	}
	bundle := filepath.Join(e.opts.State, "containers", c.ID)
	_ = snapshot.UnmountAll(filepath.Join(bundle, "rootfs"))
	if err := os.RemoveAll(bundle); err != nil {
		return err
	}
	if err := e.snaps.Remove(ctx, c.Snapshot); err != nil && !errdefs.IsNotFound(err) {
		return err
	}
	unlock, err := e.lockContainers()
	if err != nil {
		return err
	}
	defer unlock()
	return os.RemoveAll(filepath.Join(e.containersDir(), c.ID))
}

// ContainerNames lists containers as (ID, name, image) for simple listings.
func (e *Engine) Containers(ctx context.Context) ([]*Container, error) { return e.listContainers() }
