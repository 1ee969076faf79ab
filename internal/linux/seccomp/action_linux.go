package seccomp

import (
	"errors"
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// ErrNotSupported is wrapped by errors for valid OCI settings berth does not
// implement (SCMP_ACT_NOTIFY and the listener that goes with it).
var ErrNotSupported = errors.New("not supported")

// actionRet turns an OCI action into a SECCOMP_RET_* value. errnoRet is only
// meaningful for SCMP_ACT_ERRNO and SCMP_ACT_TRACE; naming it for another
// action is an error, as in runc, because the profile author expected an
// errno that the kernel would never return.
func actionRet(act specs.LinuxSeccompAction, errnoRet *uint) (uint32, error) {
	data := uint32(unix.EPERM)
	if errnoRet != nil {
		if act != specs.ActErrno && act != specs.ActTrace {
			return 0, fmt.Errorf("errnoRet is only valid with SCMP_ACT_ERRNO and SCMP_ACT_TRACE, not %s", act)
		}
		if *errnoRet > unix.SECCOMP_RET_DATA {
			return 0, fmt.Errorf("errnoRet %d does not fit the 16 bits of SECCOMP_RET_DATA", *errnoRet)
		}
		data = uint32(*errnoRet)
	}
	switch act {
	case specs.ActKill, specs.ActKillThread:
		return unix.SECCOMP_RET_KILL_THREAD, nil
	case specs.ActKillProcess:
		return unix.SECCOMP_RET_KILL_PROCESS, nil
	case specs.ActTrap:
		return unix.SECCOMP_RET_TRAP, nil
	case specs.ActErrno:
		return unix.SECCOMP_RET_ERRNO | data, nil
	case specs.ActTrace:
		return unix.SECCOMP_RET_TRACE | data, nil
	case specs.ActAllow:
		return unix.SECCOMP_RET_ALLOW, nil
	case specs.ActLog:
		return unix.SECCOMP_RET_LOG, nil
	case specs.ActNotify:
		return 0, fmt.Errorf("seccomp action %s: %w", act, ErrNotSupported)
	}
	return 0, fmt.Errorf("unknown seccomp action %q", act)
}

// allows reports whether ret lets the syscall run.
func allows(ret uint32) bool {
	return ret == unix.SECCOMP_RET_ALLOW || ret == unix.SECCOMP_RET_LOG
}

// filterFlags maps OCI flag names to SECCOMP_FILTER_FLAG_* bits.
func filterFlags(flags []specs.LinuxSeccompFlag) (uintptr, error) {
	var bits uintptr
	for _, f := range flags {
		switch f {
		case specs.LinuxSeccompFlagLog:
			bits |= unix.SECCOMP_FILTER_FLAG_LOG
		case specs.LinuxSeccompFlagSpecAllow:
			bits |= unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW
		case "SECCOMP_FILTER_FLAG_TSYNC":
			bits |= unix.SECCOMP_FILTER_FLAG_TSYNC
		case specs.LinuxSeccompFlagWaitKillableRecv:
			// Only meaningful with a user-notification listener.
			return 0, fmt.Errorf("seccomp flag %s: %w (needs SCMP_ACT_NOTIFY)", f, ErrNotSupported)
		default:
			return 0, fmt.Errorf("unknown seccomp flag %q", f)
		}
	}
	return bits, nil
}
