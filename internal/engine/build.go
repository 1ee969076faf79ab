package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/berth-dev/berth/internal/build"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/registry"
	securejoin "github.com/cyphar/filepath-securejoin"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Build runs a Dockerfile build (internal/build) with this engine's image
// store, its OCI runtime for RUN steps and its registry client for base
// images.
func (e *Engine) Build(ctx context.Context, opts build.Options) (build.Result, error) {
	return e.BuildWithAuth(ctx, opts, nil)
}

// BuildWithAuth is Build with credentials the caller brought for the
// pulls of base images (berthd: X-Registry-Config); registries they do
// not cover use the engine's own config.json.
func (e *Engine) BuildWithAuth(ctx context.Context, opts build.Options, auth registry.Credentials) (build.Result, error) {
	// RUN steps of builds killed earlier go first: their containers
	// may still run and hold the mounts the build's own reclaim of work
	// directories removes.
	e.reclaimBuildSteps(ctx)
	b := &build.Builder{Root: e.opts.Root, Images: e.images, Exec: buildExecutor{e}, Source: buildSource{e, auth}}
	return b.Build(ctx, opts)
}

// BuilderPrune empties the build cache and collects the layers only the
// cache held. It returns the bytes reclaimed. The cache's entries carry no
// labels, types or times of last use, so a prune with filters (docker
// builder prune --filter, system prune --filter) can tell none of them
// apart: it deletes nothing rather than everything.
func (e *Engine) BuilderPrune(ctx context.Context, filters map[string][]string) (int64, error) {
	if len(filters) > 0 {
		return 0, nil
	}
	e.reclaimBuildSteps(ctx)
	n, err := build.Prune(ctx, e.opts.Root)
	if err != nil {
		return n, err
	}
	m, err := e.images.GC(ctx, e.keepSnapshot)
	return n + m, err
}

// buildStateDir holds the bundles and locks of running RUN steps.
func (e *Engine) buildStateDir() string { return filepath.Join(e.opts.State, "build") }

// buildSource resolves FROM images: the local store, else a pull with the
// build's credentials.
type buildSource struct {
	e    *Engine
	auth registry.Credentials
}

func (s buildSource) Resolve(ctx context.Context, ref string, pull bool, progress io.Writer) (image.Image, error) {
	if !pull {
		img, err := s.e.images.Get(ctx, ref)
		if err == nil || !errdefs.IsNotFound(err) {
			return img, err
		}
	}
	res, err := s.e.Pull(ctx, ref, PullOptions{Auth: s.auth})
	if err != nil {
		return image.Image{}, fmt.Errorf("pull %s: %w", ref, err)
	}
	if progress != nil {
		fmt.Fprintf(progress, "pulled %s (%s)\n", res.Name, res.Digest)
	}
	return s.e.images.Get(ctx, res.ImageID)
}

// buildExecutor runs RUN steps: the container spec comes from the same
// builder as `run` (default capabilities, seccomp, masked paths, the user
// resolved in the image), and berth-runtime `run` runs it in the
// foreground. A build step needs no monitor: the build waits for it, and
// nothing of it outlives the step, not even when the build is killed
// (build_reclaim_linux.go).
type buildExecutor struct{ e *Engine }

func (x buildExecutor) Run(ctx context.Context, p build.Process) error {
	e := x.e
	// The step's lock tells later builds whether it is still ours
	// (build_reclaim_linux.go).
	id, unlock, err := e.lockBuildStep()
	if err != nil {
		return err
	}
	defer unlock()
	c := &Container{ID: id}
	c.Config.Cmd, c.Config.Env, c.Config.User = p.Args, p.Env, p.User
	c.Config.WorkingDir, c.Config.Hostname = p.Cwd, p.Hostname
	s, err := buildSpecEnv(c, p.Rootfs, specEnv{})
	if err != nil {
		return err
	}
	if p.Network == "host" {
		// Host networking: drop the network namespace and show the
		// host's resolver files, over files the image already has
		// (a mount point the runtime had to create would land in the
		// layer).
		ns := s.Linux.Namespaces[:0]
		for _, n := range s.Linux.Namespaces {
			if n.Type != specs.NetworkNamespace {
				ns = append(ns, n)
			}
		}
		s.Linux.Namespaces = ns
		for _, f := range []string{"/etc/resolv.conf", "/etc/hosts"} {
			in, err := securejoin.SecureJoin(p.Rootfs, f)
			if err != nil {
				continue
			}
			if st, err := os.Lstat(in); err != nil || !st.Mode().IsRegular() {
				continue
			}
			if _, err := os.Stat(f); err == nil {
				s.Mounts = append(s.Mounts, specs.Mount{Destination: f, Type: "bind", Source: f, Options: []string{"rbind", "ro"}})
			}
		}
	}
	s.Mounts = append(s.Mounts, p.Mounts...)
	bundle := filepath.Join(e.buildStateDir(), id)
	if err := os.Mkdir(bundle, 0o700); err != nil {
		return fmt.Errorf("build step: %w", err)
	}
	defer os.RemoveAll(bundle)
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o600); err != nil {
		return fmt.Errorf("build step: %w", err)
	}
	cmd := e.runtimeCmd(ctx, "run", "--bundle", bundle, id)
	cmd.Stdout, cmd.Stderr = p.Stdout, p.Stderr
	// On cancel the runtime gets SIGTERM, which it forwards to the step's
	// process; the delete below removes whatever is left.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	stopWatch := e.watchBuildStep(id)
	runErr := cmd.Run()
	stopWatch()
	if _, err := os.Stat(filepath.Join(e.runtimeRoot(), id)); err == nil {
		_ = e.runtimeCmd(context.WithoutCancel(ctx), "delete", "--force", id).Run()
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var ee *exec.ExitError
	if errors.As(runErr, &ee) {
		return &build.ExitError{Code: ee.ExitCode()}
	}
	if runErr != nil {
		return fmt.Errorf("build step: %s: %w", filepath.Base(e.opts.Runtime), runErr)
	}
	return nil
}
