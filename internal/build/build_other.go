//go:build !linux

package build

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// Filesystem steps need overlayfs, openat2 and an OCI runtime: Linux only.
var errNotLinux = fmt.Errorf("build steps that change the filesystem need Linux: %w", errdefs.ErrNotSupported)

func (sc *stageCtx) workdir(context.Context, string) error               { return errNotLinux }
func (sc *stageCtx) run(context.Context, *instructions.RunCommand) error { return errNotLinux }
func (sc *stageCtx) copy(context.Context, copyRequest) error             { return errNotLinux }

// workDir is the build's scratch directory; without Linux no step mounts
// anything, so there is nothing to reclaim after a crash.
func (b *Builder) workDir() (string, func(), error) {
	tmp := filepath.Join(cacheDir(b.Root), "tmp")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return "", nil, fmt.Errorf("build: %w", err)
	}
	dir, err := os.MkdirTemp(tmp, "build-")
	if err != nil {
		return "", nil, fmt.Errorf("build: %w", err)
	}
	return dir, func() { _ = os.RemoveAll(dir) }, nil
}
