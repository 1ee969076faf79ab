//go:build !linux

package build

import (
	"context"
	"fmt"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// Filesystem steps need overlayfs, openat2 and an OCI runtime: Linux only.
var errNotLinux = fmt.Errorf("build steps that change the filesystem need Linux: %w", errdefs.ErrNotSupported)

func (sc *stageCtx) workdir(context.Context, string) error               { return errNotLinux }
func (sc *stageCtx) run(context.Context, *instructions.RunCommand) error { return errNotLinux }
func (sc *stageCtx) copy(context.Context, copyRequest) error             { return errNotLinux }
