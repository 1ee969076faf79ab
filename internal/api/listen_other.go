//go:build !linux

package api

import (
	"fmt"
	"net"

	"github.com/berth-dev/berth/internal/errdefs"
)

// ListenUnix needs Linux (flock, socket ownership); berthd runs only there.
func ListenUnix(path, group string) (net.Listener, func() error, error) {
	return nil, nil, fmt.Errorf("berthd socket %s: %w", path, errdefs.ErrNotSupported)
}
