package engine

import "context"

// RemoveVolumesHook, when set (by the volume code), removes a container's
// anonymous volumes for `rm -v`. It is a hook rather than a call because
// volumes are managed in their own file of the engine.
var RemoveVolumesHook func(ctx context.Context, e *Engine, c *Container) error

func (e *Engine) removeAnonymousVolumes(ctx context.Context, c *Container) error {
	if RemoveVolumesHook == nil {
		return nil
	}
	return RemoveVolumesHook(ctx, e, c)
}
