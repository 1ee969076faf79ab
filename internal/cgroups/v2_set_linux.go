package cgroups

import (
	"fmt"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Set writes the limits in r. Apply must have run.
func (m *v2Manager) Set(r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	steps := []func(*specs.LinuxResources) error{
		m.setCPUSet, m.setMemory, m.setCPU, m.setPids, m.setIO,
		m.setHugetlb, m.setDevices, m.setUnified,
	}
	for _, step := range steps {
		if err := step(r); err != nil {
			return fmt.Errorf("cgroups: set %s: %w", m.path, err)
		}
	}
	if r.Network != nil && (r.Network.ClassID != nil || len(r.Network.Priorities) > 0) {
		return fmt.Errorf("cgroups: set %s: network class id and priorities need cgroup v1 net_cls/net_prio, which this host does not have", m.path)
	}
	return nil
}

// v2Max formats an OCI limit for a v2 file: -1 is "max".
func v2Max(v int64) string {
	if v == -1 {
		return "max"
	}
	return formatInt(v)
}

func (m *v2Manager) setMemory(r *specs.LinuxResources) error {
	mem := r.Memory
	if mem == nil {
		return nil
	}
	var limit, swap int64
	if mem.Limit != nil {
		limit = *mem.Limit
	}
	if mem.Swap != nil {
		swap = *mem.Swap
	}
	swapV2, err := swapToV2(swap, limit)
	if err != nil {
		return err
	}
	// swap.max limits swap alone, so unlike v1 there is no ordering
	// constraint between it and memory.max. Without swap accounting the
	// file is missing; only an actual swap limit makes that an error.
	if swapV2 != 0 {
		if err := writeFile(m.dir, "memory.swap.max", v2Max(swapV2)); err != nil {
			if swapV2 != -1 || m.hasFile("memory.swap.max") {
				return err
			}
		}
	}
	if limit != 0 {
		if err := writeFile(m.dir, "memory.max", v2Max(limit)); err != nil {
			return err
		}
	}
	if mem.Reservation != nil && *mem.Reservation != 0 {
		if err := writeFile(m.dir, "memory.low", v2Max(*mem.Reservation)); err != nil {
			return err
		}
	}
	// swappiness and disableOOMKiller have no v2 equivalent; kernel
	// limits are gone. runc ignores them too.
	return nil
}

func (m *v2Manager) setCPU(r *specs.LinuxResources) error {
	c := r.CPU
	if c == nil {
		return nil
	}
	if c.Shares != nil && *c.Shares != 0 {
		if err := writeFile(m.dir, "cpu.weight", formatUint(sharesToWeight(*c.Shares))); err != nil {
			return err
		}
	}
	quotaSet := c.Quota != nil && *c.Quota != 0
	periodSet := c.Period != nil && *c.Period != 0
	if quotaSet || periodSet {
		v, err := m.cpuMax(c.Quota, c.Period)
		if err != nil {
			return err
		}
		if err := writeFile(m.dir, "cpu.max", v); err != nil {
			return err
		}
	}
	if c.Burst != nil {
		if err := writeFile(m.dir, "cpu.max.burst", formatUint(*c.Burst)); err != nil {
			return err
		}
	}
	if c.Idle != nil {
		if err := writeFile(m.dir, "cpu.idle", formatInt(*c.Idle)); err != nil {
			return err
		}
	}
	if (c.RealtimePeriod != nil && *c.RealtimePeriod != 0) || (c.RealtimeRuntime != nil && *c.RealtimeRuntime != 0) {
		return fmt.Errorf("realtime cpu limits are not supported on cgroup v2")
	}
	return nil
}

// cpuMax formats cpu.max ("quota period"). A period given alone keeps the
// current quota, so `update --cpu-period` does not lift a quota.
func (m *v2Manager) cpuMax(quota *int64, period *uint64) (string, error) {
	q := ""
	if quota != nil && *quota != 0 {
		if *quota < 0 {
			q = "max"
		} else {
			q = formatInt(*quota)
		}
	} else {
		cur, err := readTrim(m.dir, "cpu.max")
		if err != nil {
			return "", err
		}
		q, _, _ = strings.Cut(cur, " ")
	}
	if period != nil && *period != 0 {
		return q + " " + formatUint(*period), nil
	}
	return q, nil
}

func (m *v2Manager) setCPUSet(r *specs.LinuxResources) error {
	c := r.CPU
	if c == nil {
		return nil
	}
	if c.Cpus != "" {
		if err := writeFile(m.dir, "cpuset.cpus", c.Cpus); err != nil {
			return err
		}
	}
	if c.Mems != "" {
		if err := writeFile(m.dir, "cpuset.mems", c.Mems); err != nil {
			return err
		}
	}
	return nil
}

func (m *v2Manager) setPids(r *specs.LinuxResources) error {
	if r.Pids == nil || r.Pids.Limit == nil {
		return nil
	}
	return writeFile(m.dir, "pids.max", pidsMax(*r.Pids.Limit))
}

func (m *v2Manager) setIO(r *specs.LinuxResources) error {
	b := r.BlockIO
	if b == nil {
		return nil
	}
	// With BFQ, io.bfq.weight takes the v1 range (1-1000) directly;
	// otherwise io.weight takes 1-10000 and the value is converted.
	bfq := (b.Weight != nil || len(b.WeightDevice) > 0) && m.hasFile("io.bfq.weight")
	if b.Weight != nil && *b.Weight != 0 {
		var err error
		if bfq {
			err = writeFile(m.dir, "io.bfq.weight", formatUint(uint64(*b.Weight)))
		} else {
			err = writeFile(m.dir, "io.weight", "default "+formatUint(blkioWeightToIOWeight(uint64(*b.Weight))))
		}
		if err != nil {
			return err
		}
	}
	for _, wd := range b.WeightDevice {
		if wd.Weight == nil {
			continue
		}
		dev := fmt.Sprintf("%d:%d ", wd.Major, wd.Minor)
		var err error
		if bfq {
			err = writeFile(m.dir, "io.bfq.weight", dev+formatUint(uint64(*wd.Weight)))
		} else {
			err = writeFile(m.dir, "io.weight", dev+formatUint(blkioWeightToIOWeight(uint64(*wd.Weight))))
		}
		if err != nil {
			return err
		}
	}
	throttles := []struct {
		key  string
		devs []specs.LinuxThrottleDevice
	}{
		{"rbps", b.ThrottleReadBpsDevice},
		{"wbps", b.ThrottleWriteBpsDevice},
		{"riops", b.ThrottleReadIOPSDevice},
		{"wiops", b.ThrottleWriteIOPSDevice},
	}
	for _, t := range throttles {
		for _, td := range t.devs {
			// In v1 a rate of 0 removes the limit; in io.max that is "max".
			rate := "max"
			if td.Rate != 0 {
				rate = formatUint(td.Rate)
			}
			if err := writeFile(m.dir, "io.max", fmt.Sprintf("%d:%d %s=%s", td.Major, td.Minor, t.key, rate)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (m *v2Manager) setHugetlb(r *specs.LinuxResources) error {
	for _, h := range r.HugepageLimits {
		if err := writeFile(m.dir, "hugetlb."+h.Pagesize+".max", formatUint(h.Limit)); err != nil {
			return err
		}
	}
	return nil
}

// setUnified writes the OCI `unified` map verbatim, after every other
// setting so that it wins. Keys are file names in the cgroup directory.
func (m *v2Manager) setUnified(r *specs.LinuxResources) error {
	for k, v := range r.Unified {
		if k == "" || strings.ContainsAny(k, "/\x00") || k == "." || k == ".." {
			return fmt.Errorf("invalid unified key %q", k)
		}
		if strings.HasPrefix(k, "cgroup.") && k != "cgroup.freeze" && k != "cgroup.max.depth" &&
			k != "cgroup.max.descendants" && k != "cgroup.type" {
			return fmt.Errorf("unified key %q is managed by berth", k)
		}
		if err := writeFile(m.dir, k, v); err != nil {
			return fmt.Errorf("unified %s: %w", k, err)
		}
	}
	return nil
}
