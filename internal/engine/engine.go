// Package engine is berth's in-process engine: it owns the stores (content,
// snapshots, images, containers) under one root and the runtime state under
// one state directory, and implements every operation the CLI and the API
// server expose. The CLI calls it directly; berthd serves the same methods
// over the Docker Engine API, so both paths share one implementation.
package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/registry"
	"github.com/berth-dev/berth/internal/snapshot"
)

// Options select where an engine keeps its data.
type Options struct {
	// Root holds images, layers and container records (default /var/lib/berth).
	Root string
	// State holds runtime state of live containers (default /run/berth).
	State string
	// Insecure lists registries (host[:port]) spoken to over plain HTTP in
	// addition to localhost and 127.0.0.1.
	Insecure []string
	// Runtime is the OCI runtime binary (default: berth-runtime beside the
	// running executable, then $PATH).
	Runtime string
	// MaxLayerSize bounds a layer's uncompressed size (default: the
	// BERTH_MAX_LAYER_SIZE environment variable in bytes, else 64 GiB).
	MaxLayerSize int64
}

// Defaults for Options.
const (
	DefaultRoot  = "/var/lib/berth"
	DefaultState = "/run/berth"
)

// Engine is one berth instance. Its methods are safe for concurrent use,
// and several processes may open the same root at once: every store takes
// cross-process locks for its mutations.
type Engine struct {
	opts     Options
	content  *content.Store
	snaps    snapshot.Snapshotter
	images   *image.Store
	registry *registry.Client
}

// Open opens (creating if needed) the stores under opts.Root.
func Open(opts Options) (*Engine, error) {
	if opts.Root == "" {
		opts.Root = DefaultRoot
	}
	if opts.State == "" {
		opts.State = DefaultState
	}
	for _, d := range []string{opts.Root, opts.State} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return nil, fmt.Errorf("engine: %w", err)
		}
	}
	cs, err := content.Open(filepath.Join(opts.Root, "content"))
	if err != nil {
		return nil, err
	}
	sn, err := snapshot.New(filepath.Join(opts.Root, "snapshots"))
	if err != nil {
		return nil, err
	}
	is, err := image.NewStore(opts.Root, cs, sn)
	if err != nil {
		return nil, err
	}
	if opts.Runtime == "" {
		opts.Runtime = findRuntime()
	}
	if opts.MaxLayerSize == 0 {
		if v := os.Getenv("BERTH_MAX_LAYER_SIZE"); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n <= 0 {
				return nil, fmt.Errorf("BERTH_MAX_LAYER_SIZE=%q: want a positive number of bytes: %w", v, errdefs.ErrInvalidArgument)
			}
			opts.MaxLayerSize = n
		}
	}
	return &Engine{
		opts:     opts,
		content:  cs,
		snaps:    sn,
		images:   is,
		registry: registry.New(registry.Options{Insecure: opts.Insecure, UserAgent: "berth"}),
	}, nil
}

// Close releases the engine's resources.
func (e *Engine) Close() error { return nil }

// Flush makes the image pulls this engine ran durable now and waits for
// it. Pulls flush in the background after they finish (see package
// image); a long-lived process (berthd) calls Flush before it exits, a
// CLI leaves that to the next command so that `pull` never waits for it.
func (e *Engine) Flush() { e.images.Flush() }

// DiscardedImages names the images the store dropped when it opened:
// pulled before a reboot that came before their layers reached the disk.
// Pulling them again fetches them.
func (e *Engine) DiscardedImages() []string { return e.images.Discarded() }

// Root and State report the directories in use.
func (e *Engine) Root() string  { return e.opts.Root }
func (e *Engine) State() string { return e.opts.State }

// Driver names the snapshotter in use ("overlay" or "native").
func (e *Engine) Driver() string { return e.snaps.Driver() }

// findRuntime prefers the berth-runtime installed beside this executable, so
// a build tree's bin/ is self-consistent, then $PATH.
func findRuntime() string {
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), "berth-runtime")
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p
		}
	}
	for _, dir := range strings.Split(os.Getenv("PATH"), ":") {
		p := filepath.Join(dir, "berth-runtime")
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p
		}
	}
	return "berth-runtime"
}
