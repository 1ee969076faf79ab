//go:build !unix

package content

import (
	"context"
	"errors"
	"fmt"

	"github.com/berth-dev/berth/internal/errdefs"
)

var errLocked = errors.New("ingest is locked by another writer")

type ingestLock struct{}

func lockIngest(ctx context.Context, dir string) (*ingestLock, error) {
	return nil, fmt.Errorf("ingest locks need flock(2): %w", errdefs.ErrNotSupported)
}

func tryLockIngest(dir string) (*ingestLock, error) { return lockIngest(context.Background(), dir) }

func (l *ingestLock) removeAndUnlock() error { return nil }
