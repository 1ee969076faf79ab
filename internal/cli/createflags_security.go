package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
)

// securityOptions applies --cap-add/--cap-drop, --privileged, --group-add,
// --security-opt, --userns and --device.
func (f *createFlags) securityOptions(hc *container.HostConfig) error {
	hc.CapAdd, hc.CapDrop, hc.Privileged, hc.GroupAdd = f.capAdd, f.capDrop, f.privileged, f.groupAdd
	sec, err := inlineSeccomp(f.securityOpt)
	if err != nil {
		return err
	}
	hc.SecurityOpt = sec
	if err := validateUserns(f.userns); err != nil {
		return err
	}
	hc.UsernsMode = container.UsernsMode(f.userns)
	for _, d := range f.devices {
		m, err := parseDevice(d)
		if err != nil {
			return err
		}
		hc.Devices = append(hc.Devices, m)
	}
	return nil
}

// inlineSeccomp replaces seccomp=FILE by the file's JSON, as Docker's CLI
// does: the container keeps its profile even if the file changes or goes.
func inlineSeccomp(opts []string) ([]string, error) {
	out := make([]string, 0, len(opts))
	for _, o := range opts {
		k, v, ok := strings.Cut(o, "=")
		if !ok {
			k, v, ok = strings.Cut(o, ":")
		}
		if ok && k == "seccomp" && v != "unconfined" && v != "builtin" && !strings.HasPrefix(v, "{") {
			b, err := os.ReadFile(v)
			if err != nil {
				return nil, fmt.Errorf("opening seccomp profile (%s) failed: %w", v, err)
			}
			var buf bytes.Buffer
			if err := json.Compact(&buf, b); err != nil {
				return nil, fmt.Errorf("compacting json for seccomp profile (%s) failed: %w", v, err)
			}
			o = "seccomp=" + buf.String()
		}
		out = append(out, o)
	}
	return out, nil
}

// validateUserns accepts "", "host", "auto", "auto:size=N" and UID:GID:SIZE.
func validateUserns(s string) error {
	bad := fmt.Errorf("invalid --userns %q: use host, auto[:size=N] or UID:GID:SIZE", s)
	switch {
	case s == "" || s == "host" || s == "auto":
		return nil
	case strings.HasPrefix(s, "auto:"):
		k, v, ok := strings.Cut(strings.TrimPrefix(s, "auto:"), "=")
		if n, err := strconv.ParseUint(v, 10, 32); !ok || k != "size" || err != nil || n == 0 {
			return bad
		}
		return nil
	}
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return bad
	}
	for _, p := range parts {
		if _, err := strconv.ParseUint(p, 10, 32); err != nil {
			return bad
		}
	}
	if parts[2] == "0" {
		return bad
	}
	return nil
}

// parseDevice reads --device host[:container][:perms].
func parseDevice(s string) (container.DeviceMapping, error) {
	m := container.DeviceMapping{CgroupPermissions: "rwm"}
	parts := strings.Split(s, ":")
	isPerms := func(p string) bool { return p != "" && strings.Trim(p, "rwm") == "" && len(p) <= 3 }
	switch len(parts) {
	case 3:
		if !isPerms(parts[2]) {
			return m, fmt.Errorf("invalid device specification: %s", s)
		}
		m.CgroupPermissions = parts[2]
		m.PathInContainer = parts[1]
	case 2:
		if isPerms(parts[1]) {
			m.CgroupPermissions = parts[1]
		} else {
			m.PathInContainer = parts[1]
		}
	case 1:
	default:
		return m, fmt.Errorf("invalid device specification: %s", s)
	}
	m.PathOnHost = parts[0]
	if m.PathInContainer == "" {
		m.PathInContainer = m.PathOnHost
	}
	if !path.IsAbs(m.PathOnHost) || !path.IsAbs(m.PathInContainer) {
		return m, fmt.Errorf("invalid device specification: %s: device paths must be absolute", s)
	}
	return m, nil
}
