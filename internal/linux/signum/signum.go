// Package signum reads a signal as users spell it on a command line:
// "9", "KILL", "SIGKILL", "sigterm", "SIGRTMIN+3", "RTMAX-2". The runtime's
// `kill` and the CLI's --stop-signal both take that form; each words its
// own error (runc's and docker's messages differ).
package signum

import (
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Linux's real-time signals as glibc numbers them (SIGRTMIN is 34: glibc
// keeps 32 and 33 for itself) and the highest signal number.
const (
	rtMin = 34
	rtMax = 64
)

// Parse returns the signal s names, and false when it names none.
func Parse(s string) (unix.Signal, bool) {
	if n, err := strconv.Atoi(s); err == nil {
		return unix.Signal(n), n > 0 && n <= rtMax
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, true
	}
	base, rest := rtMin, ""
	switch {
	case strings.HasPrefix(name, "SIGRTMIN"):
		rest = name[len("SIGRTMIN"):]
	case strings.HasPrefix(name, "SIGRTMAX"):
		base, rest = rtMax, name[len("SIGRTMAX"):]
	default:
		return 0, false
	}
	off := 0
	if rest != "" {
		if rest[0] != '+' && rest[0] != '-' {
			return 0, false
		}
		n, err := strconv.Atoi(rest)
		if err != nil {
			return 0, false
		}
		off = n
	}
	if n := base + off; n >= rtMin && n <= rtMax {
		return unix.Signal(n), true
	}
	return 0, false
}
