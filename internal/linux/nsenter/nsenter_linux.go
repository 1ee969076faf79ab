// Package nsenter joins mount, user and time namespaces before the Go
// runtime starts.
//
// The kernel refuses setns(2) into a mount namespace for a process whose
// threads share filesystem attributes, and into a user or time namespace
// for any multi-threaded process. A Go program is multi-threaded from its
// first instruction, so those joins happen in the process's entry point
// (entry_linux_amd64.s), in assembly, while the process still has one
// thread; it then jumps to the Go runtime's entry. berth-runtime is linked
// with that entry point: -ldflags "-E <this package>.entry" (see the
// Makefile). An assembly entry rather than a C constructor keeps the binary
// free of cgo and libc, whose start-up costs about 0.6 ms per process, and
// the runtime starts two processes per container.
//
// Protocol: the parent passes the namespace files as inherited descriptors
// and names them in the environment variable _BERTH_NSENTER as a
// comma-separated list of descriptor numbers, in the order to join (user
// first: joining the user namespace grants the capabilities needed to
// enter the others it owns). For each, the entry point joins it, becomes
// root of a joined user namespace (our host ids are unmapped there), and
// closes it. Then it unshares the namespaces named by _BERTH_UNSHARE (a
// decimal clone-flags value): how a container joins an existing user
// namespace and still gets new mount, UTS or IPC namespaces owned by it. It
// renames both variables so the Go runtime and children never see them. On
// failure it prints why and exits with status 125 before any Go code runs.
//
// Import this package for its side effect from main packages only.
package nsenter

import (
	"fmt"
	"os"
)

// Unhandled reports a namespace request the entry point did not carry out:
// the binary was linked without it (a plain `go build`), or the
// architecture has none.
func Unhandled() error {
	for _, v := range []string{"_BERTH_NSENTER", "_BERTH_UNSHARE"} {
		if os.Getenv(v) != "" {
			return fmt.Errorf("%s is set but was not acted on: berth-runtime must be linked with -ldflags \"-E github.com/berth-dev/berth/internal/linux/nsenter.entry\" (make build)", v)
		}
	}
	return nil
}
