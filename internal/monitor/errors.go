package monitor

import (
	"strconv"

	"github.com/berth-dev/berth/internal/errdefs"
)

// wrapped is fmt.Errorf("%s: %w") without fmt (see json.go for why the
// monitor keeps its imports few).
type wrapped struct {
	msg string
	err error
}

func (e *wrapped) Error() string { return e.msg + ": " + e.err.Error() }
func (e *wrapped) Unwrap() error { return e.err }

func wrap(msg string, err error) error { return &wrapped{msg: msg, err: err} }

// invalid classifies a bad flag or config as errdefs.ErrInvalidArgument.
func invalid(msg string) error { return wrap(msg, errdefs.ErrInvalidArgument) }

func quote(s string) string { return strconv.Quote(s) }
