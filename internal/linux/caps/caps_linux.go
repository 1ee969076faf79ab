package caps

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// LastCap returns the highest capability number the running kernel knows,
// from /proc/sys/kernel/cap_last_cap, or by probing the bounding set when
// /proc is not mounted (as inside a half-built container root). The answer
// is cached: call it once early, before pivot_root, to avoid the probe.
var LastCap = sync.OnceValues(func() (int, error) {
	if b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			return n, nil
		}
	}
	// PR_CAPBSET_READ fails with EINVAL for numbers above cap_last_cap.
	last := -1
	for c := 0; c < 64; c++ {
		if _, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(c), 0, 0, 0); err != nil {
			break
		}
		last = c
	}
	if last < 0 {
		return 0, errors.New("capabilities: cannot determine the kernel's last capability")
	}
	return last, nil
})

// kernelSet is every capability the running kernel knows.
func kernelSet() (Set, error) {
	last, err := LastCap()
	if err != nil {
		return 0, err
	}
	if last >= 63 {
		return ^Set(0), nil
	}
	return Set(1)<<(last+1) - 1, nil
}

// sets is a parsed, kernel-masked LinuxCapabilities.
type sets struct {
	bounding, effective, permitted, inheritable, ambient Set
}

func parseSets(c *specs.LinuxCapabilities) (sets, error) {
	known, err := kernelSet()
	if err != nil {
		return sets{}, err
	}
	var s sets
	for _, f := range []struct {
		name string
		list []string
		dst  *Set
	}{
		{"bounding", c.Bounding, &s.bounding},
		{"effective", c.Effective, &s.effective},
		{"permitted", c.Permitted, &s.permitted},
		{"inheritable", c.Inheritable, &s.inheritable},
		{"ambient", c.Ambient, &s.ambient},
	} {
		set, err := Parse(f.list)
		if err != nil {
			return sets{}, fmt.Errorf("%s capabilities: %w", f.name, err)
		}
		*f.dst = set & known
	}
	return s, nil
}

// Validate parses every set of c, so a runtime can reject a bad spec at
// create time instead of inside the container's init.
func Validate(c *specs.LinuxCapabilities) error {
	if c == nil {
		return nil
	}
	_, err := parseSets(c)
	return err
}

// Apply is DropBounding then ApplySets on the calling thread, for a process
// that does not change user in between.
func Apply(c *specs.LinuxCapabilities) error {
	if err := DropBounding(c); err != nil {
		return err
	}
	return ApplySets(c)
}

// DropBounding removes from the calling thread's bounding set every
// capability not in c.Bounding. It needs CAP_SETPCAP in the effective set,
// so it must run before the thread changes user or drops that capability.
func DropBounding(c *specs.LinuxCapabilities) error {
	if c == nil {
		return nil
	}
	s, err := parseSets(c)
	if err != nil {
		return err
	}
	last, _ := LastCap() // parseSets succeeded, so this did too
	for cp := 0; cp <= last; cp++ {
		if s.bounding.Has(cp) {
			continue
		}
		in, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(cp), 0, 0, 0)
		if err != nil {
			return fmt.Errorf("read bounding set %s: %w", Name(cp), os.NewSyscallError("prctl", err))
		}
		if in == 0 {
			continue // already gone: dropping it again would need CAP_SETPCAP for nothing
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(cp), 0, 0, 0); err != nil {
			return fmt.Errorf("drop %s from the bounding set: %w", Name(cp), os.NewSyscallError("prctl", err))
		}
	}
	return nil
}

// ApplySets sets the calling thread's effective, permitted and inheritable
// sets with capset(2), then replaces its ambient set. The kernel only lets a
// thread keep or shrink its permitted set, and raise an ambient capability
// that is in both its permitted and inheritable sets.
func ApplySets(c *specs.LinuxCapabilities) error {
	if c == nil {
		return nil
	}
	s, err := parseSets(c)
	if err != nil {
		return err
	}
	if missing := s.effective &^ s.permitted; missing != 0 {
		return fmt.Errorf("effective capabilities %v are not in the permitted set", missing.Names())
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3} // Pid 0: this thread
	var data [2]unix.CapUserData                                        // v3: low and high 32 bits
	for i := range data {
		shift := 32 * i
		data[i].Effective = uint32(s.effective >> shift)
		data[i].Permitted = uint32(s.permitted >> shift)
		data[i].Inheritable = uint32(s.inheritable >> shift)
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		if err == unix.EPERM {
			return fmt.Errorf("capset: permitted %v must be within the current permitted set and inheritable %v within the bounding set: %w",
				s.permitted.Names(), s.inheritable.Names(), os.NewSyscallError("capset", err))
		}
		return os.NewSyscallError("capset", err)
	}

	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("clear ambient capabilities: %w", os.NewSyscallError("prctl", err))
	}
	for cp := 0; cp < 64; cp++ {
		if !s.ambient.Has(cp) {
			continue
		}
		if !s.permitted.Has(cp) || !s.inheritable.Has(cp) {
			// The kernel cannot raise it. runc's default spec lists ambient
			// capabilities without inheritable ones and runc skips them; we
			// do the same rather than refuse specs that work with runc.
			continue
		}
		if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, uintptr(cp), 0, 0); err != nil {
			return fmt.Errorf("raise ambient %s: %w", Name(cp), os.NewSyscallError("prctl", err))
		}
	}
	return nil
}

// KeepCaps sets or clears PR_SET_KEEPCAPS on the calling thread: set it
// before switching from uid 0 to another uid so the permitted set survives
// the switch, and clear it afterwards.
func KeepCaps(on bool) error {
	v := uintptr(0)
	if on {
		v = 1
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, v, 0, 0, 0); err != nil {
		return os.NewSyscallError("prctl(PR_SET_KEEPCAPS)", err)
	}
	return nil
}
