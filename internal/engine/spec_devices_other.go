//go:build !linux

package engine

import (
	"fmt"

	"github.com/berth-dev/berth/internal/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func hostDevices(string) ([]specs.LinuxDevice, error) {
	return nil, fmt.Errorf("devices need Linux: %w", errdefs.ErrNotSupported)
}

func privilegedDevices() ([]specs.LinuxDevice, error) {
	return nil, fmt.Errorf("devices need Linux: %w", errdefs.ErrNotSupported)
}
