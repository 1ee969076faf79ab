//go:build !linux

package cgroups

import "errors"

// DetectMode reports Legacy: there are no cgroups outside Linux.
func DetectMode() Mode { return Legacy }

// New fails: control groups exist only on Linux.
func New(cgroupsPath, id string) (Manager, error) {
	return nil, errors.ErrUnsupported
}

// Prewarm does nothing where cgroups do not exist.
func Prewarm() {}
