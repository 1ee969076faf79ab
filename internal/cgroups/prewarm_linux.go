package cgroups

import (
	"os"
	"path"
	"sync"
)

var prewarmOnce sync.Once

// Prewarm starts, in the background, the kernel synchronisation that the
// first move of a process between cgroups has to wait for, so that it
// overlaps with the caller's other setup work instead of adding to it.
//
// Every move (a write to cgroup.procs, any hierarchy, v1 or v2) takes the
// kernel's global cgroup_threadgroup_rwsem for writing. When no move
// happened in the last few milliseconds, that first waits for a full RCU
// grace period — 5 to 15 ms on this class of machine, the largest single
// cost of starting a container on cgroup v1. Moves that follow within one
// grace period after the previous one are immediate. Prewarm moves the
// calling process into the cgroup it is already in: nothing changes, but
// the grace period starts now, and the container's real move an instant
// later finds the lock's fast path ready (or waits only for the remainder).
//
// The kernel holds cgroup_mutex while it waits, so other cgroup changes of
// this process (creating the container's cgroup) wait too: call Prewarm as
// early as possible, before other work, not right before those changes.
//
// It is best effort, runs once per process and returns at once; errors are
// ignored.
func Prewarm() {
	prewarmOnce.Do(func() { go prewarm() })
}

func prewarm() {
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return
	}
	self, err := parseProcCgroup(string(data))
	if err != nil {
		return
	}
	dir := ""
	switch DetectMode() {
	case Unified:
		if p, ok := self[""]; ok {
			dir = path.Join(cgroupRoot, p)
		}
	default:
		// pids is mounted on its own on common v1 hosts; fall back to
		// memory.
		for _, c := range []string{"pids", "memory"} {
			if p, ok := self[c]; ok {
				dir = path.Join(cgroupRoot, c, p)
				break
			}
		}
	}
	if dir == "" {
		return
	}
	// "0" means the writing process itself.
	_ = writeFile(dir, "cgroup.procs", "0")
}
