package engine

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
)

// DefaultRuntimeName is the name HostConfig.Runtime records for the
// engine's own runtime (Options.Runtime), as dockerd records "runc".
const DefaultRuntimeName = "berth-runtime"

// knownRuntimes are the names `--runtime` accepts besides an absolute
// path: the runtimes that speak runc's command line, which is the only
// contract the engine and the monitor use. dockerd takes its names from
// its configuration; ours are fixed, so they are looked up on $PATH.
var knownRuntimes = []string{DefaultRuntimeName, "runc", "crun"}

// resolveRuntime validates the runtime a create request names and returns
// the name to record in HostConfig.Runtime and the executable to record
// beside it. The default ("" or berth-runtime) records no executable:
// such a container follows the engine's Options.Runtime, so overriding
// the default (a build tree's bin/, tests) applies to it as it did before
// containers recorded a runtime. Any other runtime is resolved now, once:
// a later `start` from another process (berthd, a shell with another
// $PATH) must find the same binary the user chose.
func (e *Engine) resolveRuntime(name string) (recorded, path string, err error) {
	switch {
	case name == "" || name == DefaultRuntimeName:
		return DefaultRuntimeName, "", nil
	case filepath.IsAbs(name):
		path = filepath.Clean(name)
	case strings.ContainsRune(name, '/') || !slices.Contains(knownRuntimes, name):
		// dockerd's words, so clients that match them keep working.
		return "", "", fmt.Errorf("unknown or invalid runtime name: %s: %w", name, errdefs.ErrInvalidArgument)
	default:
		p, err := exec.LookPath(name)
		if err != nil {
			return "", "", fmt.Errorf("unknown or invalid runtime name: %s: not found in $PATH: %w", name, errdefs.ErrInvalidArgument)
		}
		if path, err = filepath.Abs(p); err != nil {
			return "", "", fmt.Errorf("runtime %s: %w", name, err)
		}
	}
	if err := checkExecutable(path); err != nil {
		return "", "", fmt.Errorf("unknown or invalid runtime name: %s: %w: %w", name, err, errdefs.ErrInvalidArgument)
	}
	return name, path, nil
}

// Runtimes are the runtimes a create request may name that this engine
// can run now, each with the executable it resolves to, and the name of
// the default: the engine's own (Options.Runtime) and every other known
// name found as resolveRuntime finds it. dockerd's /info lists its configured runtimes
// the same way; a name whose binary is missing is left out rather than
// listed and refused at create. Absolute paths are accepted too but are
// not names, so they are not listed.
func (e *Engine) Runtimes() (runtimes map[string]string, defaultName string) {
	out := map[string]string{DefaultRuntimeName: e.opts.Runtime}
	if p, err := exec.LookPath(e.opts.Runtime); err == nil {
		if abs, err := filepath.Abs(p); err == nil {
			out[DefaultRuntimeName] = abs
		}
	}
	for _, name := range knownRuntimes {
		if name == DefaultRuntimeName {
			continue
		}
		if _, path, err := e.resolveRuntime(name); err == nil {
			out[name] = path
		}
	}
	return out, DefaultRuntimeName
}

// checkExecutable rejects what exec would fail on later, at every start:
// a missing file, a directory, a file nobody may execute.
func checkExecutable(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() || st.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", path)
	}
	return nil
}

// containerRuntime is the runtime executable every operation on c uses:
// the one recorded at its create, else (the default, or a record from
// before containers recorded one) the engine's. All runtimes share one
// state root (runtimeRoot): container IDs are unique across them, and
// cleanup finds a container's state without knowing who made it.
func (e *Engine) containerRuntime(c *Container) string {
	if c != nil && c.RuntimePath != "" {
		return c.RuntimePath
	}
	return e.opts.Runtime
}

// ctrRuntimeCmd runs c's runtime with our runtime root.
func (e *Engine) ctrRuntimeCmd(ctx context.Context, c *Container, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, e.containerRuntime(c), append([]string{"--root", e.runtimeRoot()}, args...)...)
}

// ctrRuntime runs c's runtime and turns a failure into an error that
// carries the runtime's own message.
func (e *Engine) ctrRuntime(ctx context.Context, c *Container, args ...string) error {
	rt := e.containerRuntime(c)
	out, err := e.ctrRuntimeCmd(ctx, c, args...).CombinedOutput()
	if err != nil {
		msg := strings.TrimSpace(string(out))
		if msg == "" {
			msg = err.Error()
		}
		return fmt.Errorf("%s %s: %s", filepath.Base(rt), args[0], msg)
	}
	return nil
}
