//go:build !linux

package api

import (
	"fmt"
	"os"

	"github.com/berth-dev/berth/internal/errdefs"
)

// execTerminal needs Linux's pty ioctls; elsewhere an exec's terminal is
// fixed at its start.
type execTerminal struct{}

func newExecTerminal(height, width uint) (*execTerminal, error) {
	return nil, fmt.Errorf("exec terminal: %w", errdefs.ErrNotSupported)
}

func (t *execTerminal) stdin() *os.File                 { return nil }
func (t *execTerminal) input() *os.File                 { return nil }
func (t *execTerminal) resize(height, width uint) error { return errdefs.ErrNotSupported }
func (t *execTerminal) close()                          {}
