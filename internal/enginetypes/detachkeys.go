package enginetypes

import (
	"fmt"

	"github.com/berth-dev/berth/internal/errdefs"
)

// DefaultDetachKeys is Docker's ctrl-p ctrl-q, used when no keys are set.
var DefaultDetachKeys = []byte{0x10, 0x11}

// ParseDetachKeys reads Docker's detach-key notation ("ctrl-p,ctrl-q") into
// the bytes AttachOptions.DetachKeys matches on the attached stdin. Each
// comma-separated key is one character or ctrl-<c>, which a terminal sends
// as c's control code: ctrl-a..ctrl-z are 1..26, ctrl-@ is 0 and
// ctrl-[ ctrl-\ ctrl-] ctrl-^ ctrl-_ are 27..31. An empty string means no
// override (nil), so callers fall back to the default keys.
func ParseDetachKeys(s string) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	bad := func() error { return fmt.Errorf("invalid detach keys %q: %w", s, errdefs.ErrInvalidArgument) }
	var out []byte
	start := 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) && s[i] != ',' {
			continue
		}
		k := s[start:i]
		start = i + 1
		switch {
		case len(k) == 6 && k[:5] == "ctrl-":
			c := k[5]
			switch {
			case c >= 'a' && c <= 'z':
				out = append(out, c-'a'+1)
			case c == '@':
				out = append(out, 0)
			case c >= '[' && c <= '_':
				out = append(out, c-'['+27)
			default:
				return nil, bad()
			}
		case len(k) == 1:
			out = append(out, k[0])
		default:
			return nil, bad()
		}
	}
	return out, nil
}
