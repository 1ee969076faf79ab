//go:build !linux

package engine

import (
	"context"
	"fmt"

	"github.com/berth-dev/berth/internal/errdefs"
)

func (e *Engine) prepareUserns(ctx context.Context, c *Container, rootfs string, env *specEnv) (func(), error) {
	if r, auto, err := parseUserns(string(c.HostConfig.UsernsMode)); err != nil || r.size > 0 || auto {
		return func() {}, fmt.Errorf("--userns needs Linux: %w", errdefs.ErrNotSupported)
	}
	return func() {}, nil
}
