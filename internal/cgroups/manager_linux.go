package cgroups

import (
	"fmt"
	"os"
)

// New returns the Manager for the cgroup named by an OCI cgroupsPath
// (linux.cgroupsPath in config.json) for container id. It reads the host
// layout but creates nothing; Apply does.
//
// cgroupsPath follows runc's cgroupfs driver: an absolute path is relative
// to the hierarchy root, a relative path is relative to the cgroup of the
// calling process, and "" means "/berth/<id>". The resolved path is the same
// in every hierarchy and is what Path returns; persist Path(), not the
// original cgroupsPath, to rebuild the Manager in a later process.
//
// On legacy and hybrid hosts the Manager drives the v1 hierarchies (and, on
// hybrid hosts, also places processes at the same path in the v2 hierarchy
// for hugetlb and the `unified` map); on unified hosts it drives v2.
func New(cgroupsPath, id string) (Manager, error) {
	md := DetectMode()
	p, err := resolvePath(cgroupsPath, id, func() (string, error) {
		data, err := os.ReadFile("/proc/self/cgroup")
		if err != nil {
			return "", err
		}
		self, err := parseProcCgroup(string(data))
		if err != nil {
			return "", err
		}
		return selfReference(self, md)
	})
	if err != nil {
		return nil, fmt.Errorf("cgroups: resolve %q: %w", cgroupsPath, err)
	}
	if md == Unified {
		return newV2(cgroupRoot, p), nil
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	defer f.Close()
	ms, err := parseMountinfo(f)
	if err != nil {
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	if md == Hybrid && ms.v2.dir == "" {
		ms.v2 = mount{dir: cgroupRoot + "/unified", root: "/"}
	}
	if md == Legacy {
		ms.v2 = mount{}
	}
	return newV1(ms, p), nil
}
