// Package nsenter joins mount and user namespaces before the Go runtime
// starts.
//
// The kernel refuses setns(2) into a mount namespace for a process whose
// threads share filesystem attributes (CLONE_FS), and into a user namespace
// for any multi-threaded process. A Go program is multi-threaded from its
// first instruction, so those two joins happen in a C constructor that runs
// while the process still has one thread. Every other namespace type is
// joined per thread by the parent (see internal/runtime), which needs no C.
//
// Protocol: the parent passes the namespace files as inherited descriptors
// and names them in the environment variable _BERTH_NSENTER as a
// comma-separated list of descriptor numbers, in the order to join (user
// before mount: joining the user namespace grants the capabilities needed to
// enter a mount namespace it owns). The constructor joins each, closes it and
// removes the variable so nothing leaks into the workload. On failure it
// prints the reason and exits with status 125 before any Go code runs.
//
// After joining, it unshares the namespaces named by _BERTH_UNSHARE (a
// decimal clone-flags value). That is how a container joins an existing
// user namespace and still gets new mount, UTS or IPC namespaces: they must
// be created from inside the user namespace that will own them.
//
// Import this package for its side effect from main packages only.
package nsenter

/*
#cgo CFLAGS: -Wall -O2
extern void berth_nsenter(void);
void __attribute__((constructor)) berth_nsenter_init(void) { berth_nsenter(); }
*/
import "C"
