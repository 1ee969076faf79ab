//go:build !linux

package snapshot

import (
	"fmt"

	"github.com/berth-dev/berth/internal/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

var errNotLinux = fmt.Errorf("snapshots need Linux mounts: %w", errdefs.ErrNotSupported)

func newDefault(root string) (Snapshotter, error)        { return nil, errNotLinux }
func newOverlay(root string) (Snapshotter, error)        { return nil, errNotLinux }
func newNative(root string) (Snapshotter, error)         { return nil, errNotLinux }
func mountAll(mounts []specs.Mount, target string) error { return errNotLinux }
func unmountAll(target string) error                     { return errNotLinux }
