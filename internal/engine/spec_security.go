package engine

import (
	"fmt"
	"slices"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/linux/caps"
	"github.com/moby/moby/api/types/container"
)

// defaultCaps is Docker's default capability set.
var defaultCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// Docker's default masked and read-only paths.
var (
	defaultMaskedPaths = []string{
		"/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
		"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
		"/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
	}
	defaultReadonlyPaths = []string{
		"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
	}
)

// normalizeCaps turns user capability names ("sys_admin", "CAP_NET_ADMIN",
// "ALL") into OCI names, rejecting unknown ones as Docker does.
func normalizeCaps(list []string) ([]string, error) {
	var out []string
	for _, c := range list {
		c = strings.ToUpper(strings.TrimSpace(c))
		if c == "" {
			continue
		}
		if c != "ALL" && !strings.HasPrefix(c, "CAP_") {
			c = "CAP_" + c
		}
		if _, ok := caps.Lookup(c); c != "ALL" && !ok {
			return nil, fmt.Errorf("unknown capability: %q: %w", c, errdefs.ErrInvalidArgument)
		}
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out, nil
}

// allCaps is "every capability" for --privileged and --cap-add ALL: the
// capabilities the kernel knows that this engine itself holds in its
// bounding set. A capability we lack (here, typically CAP_SYS_RESOURCE)
// cannot be given to a child, and asking the runtime for it would only
// fail later with a bare EPERM.
func allCaps() []string {
	held := heldCaps()
	var out []string
	for c := 0; c <= caps.MaxKnown; c++ {
		if held(c) {
			out = append(out, caps.Name(c))
		}
	}
	return out
}

// containerCaps is Docker's TweakCapabilities: privileged gets everything;
// --cap-add ALL is everything minus the drops; --cap-drop ALL is only the
// adds; otherwise the defaults minus the drops plus the adds.
func containerCaps(hc *container.HostConfig) ([]string, error) {
	if hc.Privileged {
		return allCaps(), nil
	}
	add, err := normalizeCaps(hc.CapAdd)
	if err != nil {
		return nil, err
	}
	drop, err := normalizeCaps(hc.CapDrop)
	if err != nil {
		return nil, err
	}
	var out []string
	switch {
	case slices.Contains(add, "ALL"):
		for _, c := range allCaps() {
			if !slices.Contains(drop, c) {
				out = append(out, c)
			}
		}
		return out, nil
	case slices.Contains(drop, "ALL"):
	default:
		for _, c := range defaultCaps {
			if !slices.Contains(drop, c) {
				out = append(out, c)
			}
		}
	}
	held := heldCaps()
	for _, c := range add {
		n, _ := caps.Lookup(c)
		if !held(n) {
			return nil, fmt.Errorf("--cap-add %s: this berth process does not hold %s itself, so no container it starts can: %w", c, c, errdefs.ErrPermission)
		}
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out, nil
}

// securityOpts is the parsed --security-opt list.
type securityOpts struct {
	noNewPrivileges bool
	seccomp         string // "", "unconfined", a profile's JSON, or a file path
	systemPaths     bool   // systempaths=unconfined: no masked or read-only paths
}

// parseSecurityOpts reads Docker's --security-opt forms. SELinux labels and
// AppArmor profiles are accepted and ignored (this host has neither LSM),
// as Docker ignores them when the LSM is off.
func parseSecurityOpts(list []string) (securityOpts, error) {
	var o securityOpts
	for _, opt := range list {
		if opt == "no-new-privileges" {
			o.noNewPrivileges = true
			continue
		}
		k, v, ok := strings.Cut(opt, "=")
		if !ok {
			// Docker's old colon form: "seccomp:unconfined", "no-new-privileges:true".
			k, v, ok = strings.Cut(opt, ":")
		}
		if !ok {
			return o, fmt.Errorf("invalid --security-opt 1: %q: %w", opt, errdefs.ErrInvalidArgument)
		}
		switch k {
		case "no-new-privileges":
			switch v {
			case "true", "":
				o.noNewPrivileges = true
			case "false":
				o.noNewPrivileges = false
			default:
				return o, fmt.Errorf("invalid --security-opt 2: %q: %w", opt, errdefs.ErrInvalidArgument)
			}
		case "seccomp":
			o.seccomp = v
		case "systempaths":
			if v != "unconfined" {
				return o, fmt.Errorf("invalid --security-opt 2: %q: %w", opt, errdefs.ErrInvalidArgument)
			}
			o.systemPaths = true
		case "label", "apparmor":
		default:
			return o, fmt.Errorf("invalid --security-opt 2: %q: %w", opt, errdefs.ErrInvalidArgument)
		}
	}
	return o, nil
}
