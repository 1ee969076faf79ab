package nsenter

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// A container process (the init, or a process exec'd into a container) is
// pinned to the CPU it starts on, by the entry point, before the Go runtime
// starts its threads; Unpin gives the thread that becomes the workload its
// affinity back just before execve.
//
// Why: a Go process is multi-threaded, and whenever its threads have run on
// several CPUs, the kernel flushes the TLBs of all those CPUs by IPI for
// every copy-on-write fault and, at execve, for the teardown of the old
// address space. In a VM an IPI is a VM exit, and it waits for the other
// vCPU, which on a busy host may be descheduled: profiles of container
// start-up here showed about 0.8 ms per container in those flushes, most of
// it in the execve of the workload, on the path the start waits for. With
// every thread on one CPU, the flushes stay local. The container process
// does its setup on one thread anyway (GOMAXPROCS=1); only the Go
// runtime's helpers (sysmon, idle Ms) share the CPU with it.
//
// Written by the entry point (entry_linux_amd64.s) before any Go code runs.
var (
	origCPUs  unix.CPUSet // the affinity the process started with
	pinMask   unix.CPUSet // the one CPU it was pinned to
	pinnedCPU uint64      // written by getcpu(2)
	pinned    uint64      // 1 if the pin took effect
)

// Pinned reports whether the entry point pinned this process.
func Pinned() bool { return pinned != 0 }

// Unpin gives the calling thread back the CPU affinity the process
// started with, if the entry point pinned it. A v1 cpuset cgroup the thread
// has joined meanwhile still applies: the kernel intersects the two, as it
// did when the thread joined. It also records the affinity as the one the
// user asked for, which the kernel reapplies when the cpuset changes
// (`update --cpuset-cpus`), so the pin must be undone even where the
// cpuset has already overridden it. Run it on the thread that calls execve,
// before anything (seccomp) may forbid sched_setaffinity.
func Unpin() error {
	if pinned == 0 {
		return nil
	}
	err := unix.SchedSetaffinity(0, &origCPUs)
	if err == unix.EINVAL {
		// None of the CPUs we started with is in the cpuset: ask for any
		// CPU, so the cpuset alone decides, now and after updates.
		var all unix.CPUSet
		for i := 0; i < len(all)*64; i++ {
			all.Set(i)
		}
		err = unix.SchedSetaffinity(0, &all)
	}
	if err != nil {
		return fmt.Errorf("restore CPU affinity: %w", err)
	}
	return nil
}
