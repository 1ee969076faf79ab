//go:build !linux

package image

import (
	"context"
	"fmt"
	"os"

	"github.com/berth-dev/berth/internal/errdefs"
)

type fileLock struct{ f *os.File }

func lockFile(ctx context.Context, path string, exclusive bool) (*fileLock, error) {
	return nil, fmt.Errorf("lock %s: %w: image store needs Linux", path, errdefs.ErrNotSupported)
}

func (l *fileLock) unlock() {}
