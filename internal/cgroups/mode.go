package cgroups

// Mode is the layout of the host's cgroup hierarchies.
type Mode int

const (
	// Legacy hosts mount one cgroup v1 hierarchy per controller (or group of
	// co-mounted controllers) under /sys/fs/cgroup and no usable v2 hierarchy.
	Legacy Mode = iota
	// Hybrid hosts mount the v1 hierarchies and, in addition, an (empty or
	// nearly empty) v2 hierarchy at /sys/fs/cgroup/unified, typically used
	// by systemd for process tracking and by controllers that are not bound
	// to v1 (hugetlb on some hosts).
	Hybrid
	// Unified hosts mount only cgroup v2 at /sys/fs/cgroup.
	Unified
)

func (m Mode) String() string {
	switch m {
	case Legacy:
		return "legacy"
	case Hybrid:
		return "hybrid"
	case Unified:
		return "unified"
	}
	return "unknown"
}
