package cgroups

import (
	"fmt"
	"path"
	"strings"
)

// parseProcCgroup parses /proc/<pid>/cgroup ("hierarchy-id:controllers:path"
// per line) into controller -> path. The v2 entry ("0::/path") is keyed "".
// Co-mounted controllers ("cpu,cpuacct") get one key each.
func parseProcCgroup(data string) (map[string]string, error) {
	out := map[string]string{}
	for _, line := range strings.Split(data, "\n") {
		if line == "" {
			continue
		}
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			return nil, fmt.Errorf("parse /proc/self/cgroup line %q", line)
		}
		if parts[1] == "" {
			out[""] = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			out[c] = parts[2]
		}
	}
	return out, nil
}

// selfReference picks, from the caller's cgroups, the one a relative
// cgroupsPath is resolved against. runc resolves a relative path once per
// v1 controller; berth resolves it once, so that Path() is one path valid
// in every hierarchy and the Manager can be rebuilt from it by a later
// berth-runtime process (which may run in a different cgroup). On v1 the
// memory hierarchy is the reference: it is the one most often delegated
// and limited, so "nest under me" matters most there.
func selfReference(self map[string]string, mode Mode) (string, error) {
	if mode == Unified {
		if p, ok := self[""]; ok {
			return p, nil
		}
		return "", fmt.Errorf("no cgroup v2 entry in /proc/self/cgroup")
	}
	for _, c := range []string{"memory", "pids", "cpu", "name=systemd"} {
		if p, ok := self[c]; ok {
			return p, nil
		}
	}
	for c, p := range self {
		if c != "" {
			return p, nil
		}
	}
	return "", fmt.Errorf("no cgroup v1 entry in /proc/self/cgroup")
}

// resolvePath turns an OCI cgroupsPath into a cgroup path relative to the
// hierarchy root, with the semantics of runc's cgroupfs driver: absolute
// paths are taken as is, relative ones are relative to the caller's own
// cgroup (self is only called for them), and "" means /berth/<id>.
func resolvePath(cgroupsPath, id string, self func() (string, error)) (string, error) {
	if cgroupsPath == "" {
		if id == "" || strings.Contains(id, "/") || id == "." || id == ".." {
			return "", fmt.Errorf("invalid container id %q for a cgroup name", id)
		}
		return "/berth/" + id, nil
	}
	if path.IsAbs(cgroupsPath) {
		return path.Clean(cgroupsPath), nil
	}
	base, err := self()
	if err != nil {
		return "", err
	}
	// path.Join cleans "..": a relative path can climb above the caller's
	// cgroup but never above the hierarchy root.
	return path.Join("/", base, cgroupsPath), nil
}
