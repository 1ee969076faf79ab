// Package linux holds thin wrappers over Linux interfaces that the runtime
// needs and the standard library lacks. It imports nothing from berth.
package linux

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// NamespaceFlag returns the clone(2)/setns(2) flag for an OCI namespace type.
func NamespaceFlag(t specs.LinuxNamespaceType) (uintptr, error) {
	switch t {
	case specs.MountNamespace:
		return unix.CLONE_NEWNS, nil
	case specs.PIDNamespace:
		return unix.CLONE_NEWPID, nil
	case specs.NetworkNamespace:
		return unix.CLONE_NEWNET, nil
	case specs.IPCNamespace:
		return unix.CLONE_NEWIPC, nil
	case specs.UTSNamespace:
		return unix.CLONE_NEWUTS, nil
	case specs.UserNamespace:
		return unix.CLONE_NEWUSER, nil
	case specs.CgroupNamespace:
		return unix.CLONE_NEWCGROUP, nil
	case specs.TimeNamespace:
		return unix.CLONE_NEWTIME, nil
	}
	return 0, fmt.Errorf("unknown namespace type %q", t)
}

// NamespaceProcName is the file name of a namespace type under /proc/PID/ns.
func NamespaceProcName(t specs.LinuxNamespaceType) string {
	switch t {
	case specs.MountNamespace:
		return "mnt"
	case specs.NetworkNamespace:
		return "net"
	case specs.PIDNamespace:
		return "pid"
	case specs.TimeNamespace:
		return "time"
	}
	return string(t)
}
