package engine

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/snapshot"
)

// Export writes container ref's filesystem (image plus its changes) to w as
// a tar, like `docker export`. The snapshot is mounted on a private
// directory for the duration; the container may be running.
func (e *Engine) Export(ctx context.Context, ref string, w io.Writer) (retErr error) {
	c, err := e.lookupContainer(ref)
	if err != nil {
		return err
	}
	mounts, err := e.snaps.Mounts(ctx, c.Snapshot)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp(e.opts.State, "export-")
	if err != nil {
		return err
	}
	defer os.Remove(dir)
	if err := snapshot.MountAll(mounts, dir); err != nil {
		return fmt.Errorf("export %s: %w", c.Name, err)
	}
	defer func() {
		if err := snapshot.UnmountAll(dir); err != nil && retErr == nil {
			retErr = err
		}
	}()
	return archive.Tar(ctx, w, dir, archive.TarOptions{})
}
