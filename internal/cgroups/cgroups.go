// Package cgroups places container processes in control groups and applies
// the OCI resource limits to them on cgroup v1 (legacy), v2 (unified) and
// hybrid hosts. The host's layout is detected at run time, never assumed.
//
// A Manager owns one container's cgroup. Its lifecycle:
//
//	m, _ := New(cgroupsPath, id)  // nothing touched on disk yet
//	m.Prepare()                   // optional: create directories early
//	m.Apply(pid)                  // create directories, move pid in
//	m.Set(resources)              // write limits (again on `update`)
//	m.Freeze() / m.Thaw()         // pause / resume
//	m.Stats(), m.Pids(), m.OOMKillCount()
//	m.Destroy()                   // kill nothing; remove empty directories
//
// A Manager holds no open files between calls: every berth-runtime command
// is a new process that rebuilds the Manager from the container's state.
//
// v2 has no devices controller; device rules are compiled to an eBPF
// program attached to the cgroup. The program is assembled and loaded with
// raw bpf(2) calls rather than a BPF library, to keep berth-runtime's
// start-up short (devicefilter_linux.go explains).
package cgroups

import specs "github.com/opencontainers/runtime-spec/specs-go"

// Manager is implemented once for v1 (one directory per controller
// hierarchy, used on legacy and hybrid hosts) and once for v2.
type Manager interface {
	// Prepare creates the cgroup's directories without moving anything in,
	// so a container's view of its own cgroup can be built while the (slow
	// on v1) move of its init is still to come. Apply calls it too.
	Prepare() error
	// EnterThread makes the calling OS thread's future children start
	// inside the cgroup, without moving any process: on v1 the thread moves
	// itself (a write of "0" to each hierarchy's tasks file, which the
	// kernel performs without the RCU grace period a process move waits
	// for, 5-15 ms here); on v2 (and the unified half of a hybrid host) it
	// returns a cgroup directory descriptor for clone3's CLONE_INTO_CGROUP,
	// or -1. leave moves the thread back where it was. The caller keeps the
	// thread locked to its goroutine meanwhile, and the cgroup must be
	// complete enough for what the children do first (Prepare, at least).
	EnterThread() (leave func() error, cgroupFD int, err error)
	// ThreadFiles lists the files a thread writes "0" to, to move itself
	// into the cgroup (v1 tasks files, which skip the grace period), or nil
	// where only whole processes move (v2).
	ThreadFiles() []string
	// Apply creates the cgroup (all controllers) and moves pid into it.
	Apply(pid int) error
	// Set writes the limits in r. Fields that are nil are left alone, so
	// `update` can change one limit without resetting others.
	Set(r *specs.LinuxResources) error
	// Freeze stops every process in the cgroup and returns once the kernel
	// reports them frozen; Thaw undoes it.
	Freeze() error
	Thaw() error
	// Frozen reports whether the cgroup is frozen (for the `paused` status).
	Frozen() (bool, error)
	// Pids lists every process in the cgroup (recursively on v2).
	Pids() ([]int, error)
	// Stats reads the numbers `events --stats` prints.
	Stats() (*Stats, error)
	// OOMKillCount is the number of processes the kernel OOM-killed in this
	// cgroup (memory.oom_control oom_kill on v1, memory.events oom_kill on v2).
	OOMKillCount() (uint64, error)
	// Destroy removes the cgroup directories. It fails if processes remain.
	Destroy() error
	// Path returns the cgroup path relative to the hierarchy root (the
	// same for every controller), e.g. "/berth/abc".
	Path() string
}
