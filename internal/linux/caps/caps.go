// Package caps applies the five OCI capability sets (bounding, effective,
// permitted, inheritable, ambient) to the calling thread.
//
// Capabilities are per thread: a Go caller must hold runtime.LockOSThread
// from the first call here until execve, and exec from that same thread.
//
// # Order in a container's init
//
// The runtime follows runc (libcontainer's finalizeNamespace):
//
//  1. DropBounding(c): drop every capability not in c.Bounding. This needs
//     CAP_SETPCAP, so it comes while the init is still fully privileged.
//  2. KeepCaps(true): setuid from 0 to another uid clears the permitted set
//     unless PR_SET_KEEPCAPS is on.
//  3. setgroups/setresgid/setresuid to the container user (not this
//     package). Even with keepcaps the kernel clears the effective and
//     ambient sets here.
//  4. KeepCaps(false), so the workload does not inherit the flag.
//  5. ApplySets(c): capset effective/permitted/inheritable, then clear and
//     raise the ambient set. This only narrows the permitted set kept in 2.
//  6. no_new_privs, seccomp (see package seccomp for when), execve.
//
// Apply is DropBounding followed by ApplySets, for a caller that does not
// change user. A nil *specs.LinuxCapabilities leaves everything unchanged;
// a nil or empty list inside it is the empty set.
//
// Capabilities the running kernel does not know (above
// /proc/sys/kernel/cap_last_cap) are ignored, so a spec written for a newer
// kernel still starts; names berth does not know at all are errors.
package caps

import (
	"fmt"
	"math/bits"
)

// Set is a set of capabilities, bit n for capability number n.
type Set uint64

// Has reports whether capability number c is in s.
func (s Set) Has(c int) bool { return c >= 0 && c < 64 && s&(1<<c) != 0 }

// Names returns the names of the capabilities in s, lowest number first.
func (s Set) Names() []string {
	out := make([]string, 0, bits.OnesCount64(uint64(s)))
	for c := 0; c < 64; c++ {
		if s.Has(c) {
			out = append(out, Name(c))
		}
	}
	return out
}

// names is indexed by capability number (include/uapi/linux/capability.h).
var names = [...]string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
	"CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
	"CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK",
	"CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
	"CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
	"CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
	"CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// MaxKnown is the highest capability number berth has a name for.
const MaxKnown = len(names) - 1

var byName = func() map[string]int {
	m := make(map[string]int, len(names))
	for i, n := range names {
		m[n] = i
	}
	return m
}()

// Name returns the name of capability number c, or "CAP_<c>" for a number
// berth has no name for.
func Name(c int) string {
	if c >= 0 && c < len(names) {
		return names[c]
	}
	return fmt.Sprintf("CAP_%d", c)
}

// Lookup returns the number of a capability name such as "CAP_CHOWN".
func Lookup(name string) (int, bool) {
	c, ok := byName[name]
	return c, ok
}

// Parse turns OCI capability names into a Set. An unknown name is an error
// that names it: a misspelt capability must not silently become "no
// capability", nor "every capability" in a drop list.
func Parse(list []string) (Set, error) {
	var s Set
	for _, n := range list {
		c, ok := byName[n]
		if !ok {
			return 0, fmt.Errorf("unknown capability %q", n)
		}
		s |= 1 << c
	}
	return s, nil
}
