//go:build !linux

package engine

import (
	"context"
	"fmt"

	"github.com/berth-dev/berth/internal/errdefs"
)

// RUN steps run containers, which the engine does only on Linux.
func (e *Engine) lockBuildStep() (string, func(), error) {
	return "", nil, fmt.Errorf("build step: %w", errdefs.ErrNotSupported)
}

func (e *Engine) reclaimBuildSteps(ctx context.Context) {}

func (e *Engine) watchBuildStep(id string) func() { return func() {} }
