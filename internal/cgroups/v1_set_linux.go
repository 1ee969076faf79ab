package cgroups

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Set writes the limits in r to the v1 hierarchies. Apply must have run:
// Set writes into existing directories only.
func (m *v1Manager) Set(r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	steps := []func(*specs.LinuxResources) error{
		m.setCPUSet, m.setMemory, m.setCPU, m.setPids, m.setBlkio,
		m.setHugetlb, m.setNetwork, m.setDevices, m.setUnified,
	}
	for _, step := range steps {
		if err := step(r); err != nil {
			return fmt.Errorf("cgroups: set %s: %w", m.path, err)
		}
	}
	return nil
}

func formatInt(v int64) string   { return strconv.FormatInt(v, 10) }
func formatUint(v uint64) string { return strconv.FormatUint(v, 10) }

func (m *v1Manager) setMemory(r *specs.LinuxResources) error {
	mem := r.Memory
	if mem == nil {
		return nil
	}
	// kernel and kernelTCP are ignored: kmem limits are deprecated since
	// Linux 5.4 and rejected since 6.1, and OCI marks them NOT RECOMMENDED.
	if mem.Limit == nil && mem.Swap == nil && mem.Reservation == nil &&
		mem.Swappiness == nil && mem.DisableOOMKiller == nil {
		return nil
	}
	d, err := m.need("memory", "a memory limit")
	if err != nil {
		return err
	}
	if err := setMemoryAndSwapV1(d, mem.Limit, mem.Swap); err != nil {
		return err
	}
	if mem.Reservation != nil {
		if err := writeFile(d, "memory.soft_limit_in_bytes", formatInt(*mem.Reservation)); err != nil {
			return err
		}
	}
	if mem.Swappiness != nil {
		if *mem.Swappiness > 100 {
			return fmt.Errorf("invalid memory swappiness %d (must be 0-100)", *mem.Swappiness)
		}
		if err := writeFile(d, "memory.swappiness", formatUint(*mem.Swappiness)); err != nil {
			return err
		}
	}
	if mem.DisableOOMKiller != nil {
		v := "0"
		if *mem.DisableOOMKiller {
			v = "1"
		}
		if err := writeFile(d, "memory.oom_control", v); err != nil {
			return err
		}
	}
	return nil
}

// setMemoryAndSwapV1 writes memory.limit_in_bytes and
// memory.memsw.limit_in_bytes. The kernel keeps memory <= memsw at every
// instant, so when the new memsw is above the current memory limit (raising
// both, or making memsw unlimited) memsw goes first, and otherwise (lowering)
// memory goes first.
func setMemoryAndSwapV1(d string, limit, swap *int64) error {
	if limit == nil && swap == nil {
		return nil
	}
	memFirst := true
	if limit != nil && swap != nil {
		if *swap == -1 {
			memFirst = false
		} else {
			cur, err := readUint(d, "memory.limit_in_bytes")
			if err != nil {
				return err
			}
			if uint64(*swap) > cur {
				memFirst = false
			}
		}
	}
	writeMem := func() error {
		if limit == nil {
			return nil
		}
		return writeFile(d, "memory.limit_in_bytes", formatInt(*limit))
	}
	writeSwap := func() error {
		if swap == nil {
			return nil
		}
		err := writeFile(d, "memory.memsw.limit_in_bytes", formatInt(*swap))
		// Without swap accounting (swapaccount=0) the file does not
		// exist; "unlimited swap" is then what the host does anyway.
		if err != nil && *swap == -1 && !fileExists(d+"/memory.memsw.limit_in_bytes") {
			return nil
		}
		return err
	}
	if memFirst {
		if err := writeMem(); err != nil {
			return err
		}
		return writeSwap()
	}
	if err := writeSwap(); err != nil {
		return err
	}
	return writeMem()
}

func (m *v1Manager) setCPU(r *specs.LinuxResources) error {
	c := r.CPU
	if c == nil || (c.Shares == nil && c.Quota == nil && c.Period == nil &&
		c.RealtimePeriod == nil && c.RealtimeRuntime == nil && c.Burst == nil && c.Idle == nil) {
		return nil
	}
	d, err := m.need("cpu", "a cpu limit")
	if err != nil {
		return err
	}
	// The RT period must be set before the runtime it bounds.
	if c.RealtimePeriod != nil {
		if err := writeFile(d, "cpu.rt_period_us", formatUint(*c.RealtimePeriod)); err != nil {
			return err
		}
	}
	if c.RealtimeRuntime != nil {
		if err := writeFile(d, "cpu.rt_runtime_us", formatInt(*c.RealtimeRuntime)); err != nil {
			return err
		}
	}
	if c.Shares != nil && *c.Shares != 0 {
		if err := writeFile(d, "cpu.shares", formatUint(*c.Shares)); err != nil {
			return err
		}
	}
	// A new period can be rejected against the current quota (and vice
	// versa); writing the period, then the quota, then the period again
	// if it failed converges from any starting point.
	var periodErr error
	if c.Period != nil && *c.Period != 0 {
		periodErr = writeFile(d, "cpu.cfs_period_us", formatUint(*c.Period))
	}
	if c.Quota != nil && *c.Quota != 0 {
		if err := writeFile(d, "cpu.cfs_quota_us", formatInt(*c.Quota)); err != nil {
			return err
		}
	}
	if periodErr != nil {
		if err := writeFile(d, "cpu.cfs_period_us", formatUint(*c.Period)); err != nil {
			return err
		}
	}
	if c.Burst != nil {
		if err := writeFile(d, "cpu.cfs_burst_us", formatUint(*c.Burst)); err != nil {
			return err
		}
	}
	if c.Idle != nil {
		if err := writeFile(d, "cpu.idle", formatInt(*c.Idle)); err != nil {
			return err
		}
	}
	return nil
}

func (m *v1Manager) setCPUSet(r *specs.LinuxResources) error {
	c := r.CPU
	if c == nil || (c.Cpus == "" && c.Mems == "") {
		return nil
	}
	d, err := m.need("cpuset", "cpus/mems")
	if err != nil {
		return err
	}
	if c.Cpus != "" {
		if err := writeFile(d, "cpuset.cpus", c.Cpus); err != nil {
			return err
		}
	}
	if c.Mems != "" {
		if err := writeFile(d, "cpuset.mems", c.Mems); err != nil {
			return err
		}
	}
	return nil
}

func (m *v1Manager) setPids(r *specs.LinuxResources) error {
	if r.Pids == nil || r.Pids.Limit == nil {
		return nil
	}
	d, err := m.need("pids", "a pids limit")
	if err != nil {
		return err
	}
	return writeFile(d, "pids.max", pidsMax(*r.Pids.Limit))
}

// pidsMax formats an OCI pids limit: 0 or negative means unlimited.
func pidsMax(limit int64) string {
	if limit <= 0 {
		return "max"
	}
	return formatInt(limit)
}

func (m *v1Manager) setBlkio(r *specs.LinuxResources) error {
	b := r.BlockIO
	if b == nil || (b.Weight == nil && b.LeafWeight == nil && len(b.WeightDevice) == 0 &&
		len(b.ThrottleReadBpsDevice) == 0 && len(b.ThrottleWriteBpsDevice) == 0 &&
		len(b.ThrottleReadIOPSDevice) == 0 && len(b.ThrottleWriteIOPSDevice) == 0) {
		return nil
	}
	d, err := m.need("blkio", "a block I/O limit")
	if err != nil {
		return err
	}
	// CFQ exposes blkio.weight; kernels without CFQ (5.0+) expose the BFQ
	// scheduler's blkio.bfq.weight instead, which has no leaf weight.
	weightFile, weightDevFile := "blkio.weight", "blkio.weight_device"
	if (b.Weight != nil || len(b.WeightDevice) > 0) && !fileExists(d+"/blkio.weight") {
		weightFile, weightDevFile = "blkio.bfq.weight", "blkio.bfq.weight_device"
	}
	if b.Weight != nil && *b.Weight != 0 {
		if err := writeFile(d, weightFile, formatUint(uint64(*b.Weight))); err != nil {
			return err
		}
	}
	if b.LeafWeight != nil && *b.LeafWeight != 0 {
		if err := writeFile(d, "blkio.leaf_weight", formatUint(uint64(*b.LeafWeight))); err != nil {
			return err
		}
	}
	for _, wd := range b.WeightDevice {
		dev := fmt.Sprintf("%d:%d ", wd.Major, wd.Minor)
		if wd.Weight != nil {
			if err := writeFile(d, weightDevFile, dev+formatUint(uint64(*wd.Weight))); err != nil {
				return err
			}
		}
		if wd.LeafWeight != nil {
			if err := writeFile(d, "blkio.leaf_weight_device", dev+formatUint(uint64(*wd.LeafWeight))); err != nil {
				return err
			}
		}
	}
	throttles := []struct {
		file string
		devs []specs.LinuxThrottleDevice
	}{
		{"blkio.throttle.read_bps_device", b.ThrottleReadBpsDevice},
		{"blkio.throttle.write_bps_device", b.ThrottleWriteBpsDevice},
		{"blkio.throttle.read_iops_device", b.ThrottleReadIOPSDevice},
		{"blkio.throttle.write_iops_device", b.ThrottleWriteIOPSDevice},
	}
	for _, t := range throttles {
		for _, td := range t.devs {
			if err := writeFile(d, t.file, fmt.Sprintf("%d:%d %d", td.Major, td.Minor, td.Rate)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (m *v1Manager) setHugetlb(r *specs.LinuxResources) error {
	if len(r.HugepageLimits) == 0 {
		return nil
	}
	if d, ok := m.dirs["hugetlb"]; ok {
		for _, h := range r.HugepageLimits {
			if err := writeFile(d, "hugetlb."+h.Pagesize+".limit_in_bytes", formatUint(h.Limit)); err != nil {
				return err
			}
		}
		return nil
	}
	// Hybrid hosts may bind hugetlb to the v2 hierarchy instead.
	if m.v2 != nil {
		if err := m.v2.enableControllers([]string{"hugetlb"}); err != nil {
			return fmt.Errorf("hugetlb limit: %w", err)
		}
		return m.v2.setHugetlb(r)
	}
	_, err := m.need("hugetlb", "a hugepage limit")
	return err
}

func (m *v1Manager) setNetwork(r *specs.LinuxResources) error {
	n := r.Network
	if n == nil {
		return nil
	}
	if n.ClassID != nil {
		d, err := m.need("net_cls", "a network class id")
		if err != nil {
			return err
		}
		if err := writeFile(d, "net_cls.classid", formatUint(uint64(*n.ClassID))); err != nil {
			return err
		}
	}
	if len(n.Priorities) > 0 {
		d, err := m.need("net_prio", "network interface priorities")
		if err != nil {
			return err
		}
		for _, p := range n.Priorities {
			if err := writeFile(d, "net_prio.ifpriomap", p.Name+" "+formatUint(uint64(p.Priority))); err != nil {
				return err
			}
		}
	}
	return nil
}

// setDevices writes the OCI device rules in order, one rule per write, the
// way runc 1.0 did. A rule with type "a" (or no type) and no numbers is the
// wildcard: in devices.deny it switches the cgroup to "deny everything not
// allowed" and drops all exceptions, in devices.allow it does the reverse.
// Note that re-applying a list that starts with deny-all on a running
// container denies every device for the instant between the two writes.
func (m *v1Manager) setDevices(r *specs.LinuxResources) error {
	if len(r.Devices) == 0 {
		return nil
	}
	d, err := m.need("devices", "device rules")
	if err != nil {
		return err
	}
	for _, rule := range r.Devices {
		line, err := v1DeviceRule(rule)
		if err != nil {
			return err
		}
		file := "devices.deny"
		if rule.Allow {
			file = "devices.allow"
		}
		if err := writeFile(d, file, line); err != nil {
			return err
		}
	}
	return nil
}

// v1DeviceRule formats an OCI device rule as "type major:minor access".
func v1DeviceRule(rule specs.LinuxDeviceCgroup) (string, error) {
	t := rule.Type
	switch t {
	case "", "a":
		t = "a"
	case "c", "b":
	default:
		return "", fmt.Errorf("invalid device type %q", rule.Type)
	}
	access := rule.Access
	if access == "" {
		access = "rwm"
	}
	for _, c := range access {
		if c != 'r' && c != 'w' && c != 'm' {
			return "", fmt.Errorf("invalid device access %q", rule.Access)
		}
	}
	if t == "a" {
		// The kernel treats any "a" rule as the wildcard; write it in the
		// form cgroup v1 documents.
		return "a *:* rwm", nil
	}
	return t + " " + devNum(rule.Major) + ":" + devNum(rule.Minor) + " " + access, nil
}

// setUnified writes the OCI `unified` map. It only means something where
// there is a v2 hierarchy: on a hybrid host it is written there.
func (m *v1Manager) setUnified(r *specs.LinuxResources) error {
	if len(r.Unified) == 0 {
		return nil
	}
	if m.v2 == nil {
		return errors.New("the unified map needs cgroup v2, and this host has only v1")
	}
	// The hybrid v2 hierarchy starts with no controller delegated; enable
	// the ones the keys name ("hugetlb.2MB.max" -> hugetlb).
	var ctrls []string
	for k := range r.Unified {
		if c, _, ok := strings.Cut(k, "."); ok && c != "cgroup" && !slices.Contains(ctrls, c) {
			ctrls = append(ctrls, c)
		}
	}
	if err := m.v2.enableControllers(ctrls); err != nil {
		return err
	}
	return m.v2.setUnified(r)
}
