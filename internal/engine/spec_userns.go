package engine

import (
	"context"
)

// prepareUserns sets up the container's user namespace (see
// spec_userns_linux.go); without --userns it does nothing.
func (e *Engine) prepareUserns(ctx context.Context, c *Container, rootfs string, env *specEnv) (cleanup func(), err error) {
	return func() {}, nil
}
