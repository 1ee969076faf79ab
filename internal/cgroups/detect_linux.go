package cgroups

import (
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// cgroupRoot is where the host mounts its cgroup hierarchies. A variable
// only so tests can point detection at a temporary directory.
var cgroupRoot = "/sys/fs/cgroup"

var (
	modeOnce sync.Once
	mode     Mode
)

// DetectMode reports the host's cgroup layout. It is computed once per
// process from the filesystem types (statfs) of /sys/fs/cgroup and
// /sys/fs/cgroup/unified.
func DetectMode() Mode {
	modeOnce.Do(func() { mode = detectMode(cgroupRoot) })
	return mode
}

func detectMode(root string) Mode {
	var st unix.Statfs_t
	if err := unix.Statfs(root, &st); err != nil {
		return Legacy
	}
	if st.Type == unix.CGROUP2_SUPER_MAGIC {
		return Unified
	}
	if err := unix.Statfs(root+"/unified", &st); err == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		return Hybrid
	}
	return Legacy
}

// fileExists is used for the few files whose absence selects a code path
// (bfq vs cfq blkio files, swap accounting).
func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
