//go:build !linux

package volume

import (
	"fmt"

	"github.com/berth-dev/berth/internal/errdefs"
)

var errNotLinux = fmt.Errorf("volumes need Linux: %w", errdefs.ErrNotSupported)

func flock(string) (func(), error)     { return nil, errNotLinux }
func unmountData(string) error         { return nil }
func (s *Store) Mount(v *Volume) error { return errNotLinux }
func IsEmpty(string) (bool, error)     { return false, errNotLinux }
func Populate(dst, src string) error   { return errNotLinux }
