package runtime

import (
	"errors"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/cgroups"
)

// How the init gets into its cgroup without waiting.
//
// Moving a process between cgroups (a write of its pid to cgroup.procs)
// takes the kernel's cgroup_threadgroup_rwsem for writing, and that first
// waits for an RCU grace period: 5-15 ms on this class of machine, the
// largest single cost of starting a container. Moving only the *calling
// thread* (a write of "0" to a v1 hierarchy's tasks file) skips that lock.
// So the init is never moved as a process:
//
//   - selfMove (cgroup v1 and hybrid, no user namespace): the init's main
//     thread, the one that later execs the workload, writes "0" to each
//     hierarchy's tasks file when the parent says the cgroup is complete
//     (msgPrepared carries the files). The init can start before the cgroup
//     exists, so nothing waits for it.
//   - otherwise (pure v2, or a user namespace whose root cannot write the
//     host's cgroup files): the init is born inside the cgroup, forked by a
//     parent thread that stepped in (cgroups.Manager.EnterThread; clone3
//     CLONE_INTO_CGROUP on v2).
//
// Only a pids limit of 1 with the second way, and hugetlb or unified
// settings on a hybrid host with the first (the v2 half has no per-thread
// move), fall back to moving the process.

// cgroupJob builds the container's cgroup beside the rest of create.
type cgroupJob struct {
	m   cgroups.Manager
	res *specs.LinuxResources
	// records takes the container's record. The job saves it, with the
	// cgroup's path, before it creates anything on the host, so a create
	// killed from then on leaves something `delete` can clean up. Closing
	// records instead aborts the job.
	records chan Container
	// Each gets one error, in this order: m is set (the cgroup's path is
	// known); the record is saved and the directories exist; the limits are
	// set (done also carries any earlier error). finished is closed when the
	// job has stopped touching anything.
	known, dirs, done chan error
	finished          chan struct{}
}

var errCreateAborted = errors.New("create aborted")

// startCgroupJob starts building the cgroup; it waits for the record (see
// records) before it creates anything.
func startCgroupJob(b *bundleSpec, id string) *cgroupJob {
	j := &cgroupJob{records: make(chan Container, 1), known: make(chan error, 1), dirs: make(chan error, 1), done: make(chan error, 1), finished: make(chan struct{})}
	go func() {
		defer close(j.finished)
		m, err := cgroups.New(b.spec.Linux.CgroupsPath, id)
		if err == nil {
			j.m = m
		}
		j.known <- err
		if err == nil {
			record, ok := <-j.records
			if !ok {
				err = errCreateAborted
			} else {
				record.CgroupPath = m.Path()
				err = record.save()
			}
		}
		if err == nil {
			err = m.Prepare()
		}
		j.dirs <- err
		if err == nil {
			j.res = b.resources()
			err = m.Set(j.res)
		}
		j.done <- err
	}()
	return j
}

// needsUnified reports settings that only the v2 half of a hybrid host
// can apply, which a thread of the init cannot enter by itself.
func needsUnified(res *specs.LinuxResources) bool {
	return res != nil && (len(res.HugepageLimits) > 0 || len(res.Unified) > 0)
}
