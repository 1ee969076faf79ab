package seccomp

import (
	"fmt"
	"os"
	"runtime"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Load installs filter with seccomp(SECCOMP_SET_MODE_FILTER) and the
// requested OCI flags ("SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
// and "SECCOMP_FILTER_FLAG_TSYNC").
//
// The kernel only accepts a filter from a thread that has no_new_privs set
// (prctl(PR_SET_NO_NEW_PRIVS, 1)) or CAP_SYS_ADMIN in its effective set;
// otherwise Load fails with EACCES.
//
// Without TSYNC the filter applies to the calling thread only, and is
// inherited by what that thread clones or execs. A Go caller must therefore
// hold runtime.LockOSThread from Load until execve, and call Load as late as
// possible: after Load every syscall the runtime makes on this thread,
// including the execve itself, goes through the filter. TSYNC would also
// filter the Go runtime's other threads, which is rarely what a runtime wants.
//
// Filters stack: a second Load adds a filter, it never replaces one.
func Load(filter []unix.SockFilter, flags []specs.LinuxSeccompFlag) error {
	if len(filter) == 0 || len(filter) > maxInsns {
		return fmt.Errorf("seccomp: program of %d instructions, want 1..%d", len(filter), maxInsns)
	}
	bits, err := filterFlags(flags)
	if err != nil {
		return err
	}
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	r, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, bits, uintptr(unsafe.Pointer(&prog)))
	runtime.KeepAlive(filter)
	if errno != 0 {
		return os.NewSyscallError("seccomp", errno)
	}
	if r != 0 {
		// With TSYNC, a positive return is the id of a thread that could
		// not be synchronised (it has a diverging filter or no_new_privs).
		return fmt.Errorf("seccomp: TSYNC could not synchronise thread %d", r)
	}
	return nil
}
