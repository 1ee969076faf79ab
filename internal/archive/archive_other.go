//go:build !linux

package archive

import (
	"context"
	"fmt"
	"io"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Layers are applied and diffed with Linux-only primitives (openat2,
// overlayfs whiteouts); other platforms can still compress and decompress.

func apply(context.Context, string, io.Reader, ApplyOptions) (int64, error) {
	return 0, fmt.Errorf("apply layer: %w", errdefs.ErrNotSupported)
}

func syncDir(string) error { return fmt.Errorf("sync: %w", errdefs.ErrNotSupported) }

func diff(context.Context, io.Writer, string, []string) error {
	return fmt.Errorf("diff: %w", errdefs.ErrNotSupported)
}

func tarTree(context.Context, io.Writer, string, TarOptions) error {
	return fmt.Errorf("tar: %w", errdefs.ErrNotSupported)
}
