package cgroups

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// userHZ is the unit of cpuacct.stat: USER_HZ, which is 100 on every Linux
// architecture berth supports (it is fixed ABI, independent of CONFIG_HZ).
const userHZ = 100

// Stats reads the v1 counters. Controllers that are not mounted leave their
// section zero.
func (m *v1Manager) Stats() (*Stats, error) {
	st := &Stats{}
	readers := []struct {
		ctrl string
		read func(string, *Stats) error
	}{
		{"cpuacct", statCpuacctV1},
		{"cpu", statCPUV1},
		{"memory", statMemoryV1},
		{"pids", statPidsV1},
		{"blkio", statBlkioV1},
		{"hugetlb", statHugetlbV1},
	}
	for _, r := range readers {
		d, ok := m.dirs[r.ctrl]
		if !ok {
			continue
		}
		if err := r.read(d, st); err != nil {
			return nil, fmt.Errorf("cgroups: stats %s: %w", m.path, err)
		}
	}
	if _, ok := m.dirs["hugetlb"]; !ok && m.v2 != nil && fileExists(m.unified) {
		if err := statHugetlbV2(m.unified, st); err != nil {
			return nil, fmt.Errorf("cgroups: stats %s: %w", m.path, err)
		}
	}
	return st, nil
}

func statCpuacctV1(d string, st *Stats) error {
	total, err := readUint(d, "cpuacct.usage")
	if err != nil {
		return err
	}
	st.CPU.Usage.Total = total
	s, err := readFile(d, "cpuacct.usage_percpu")
	if err != nil {
		return err
	}
	for _, f := range strings.Fields(s) {
		v, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return fmt.Errorf("parse cpuacct.usage_percpu: %w", err)
		}
		st.CPU.Usage.Percpu = append(st.CPU.Usage.Percpu, v)
	}
	kv, err := readKeyValues(d, "cpuacct.stat")
	if err != nil {
		return err
	}
	st.CPU.Usage.User = kv["user"] * (1e9 / userHZ)
	st.CPU.Usage.Kernel = kv["system"] * (1e9 / userHZ)
	return nil
}

func statCPUV1(d string, st *Stats) error {
	kv, err := readKeyValues(d, "cpu.stat")
	if err != nil {
		return err
	}
	st.CPU.Throttling = Throttling{
		Periods:          kv["nr_periods"],
		ThrottledPeriods: kv["nr_throttled"],
		ThrottledTime:    kv["throttled_time"],
	}
	return nil
}

func statMemoryV1(d string, st *Stats) error {
	raw, err := readKeyValues(d, "memory.stat")
	if err != nil {
		return err
	}
	st.Memory.Raw = raw
	st.Memory.Cache = raw["cache"]
	entries := []struct {
		prefix string
		e      *MemoryEntry
	}{
		{"memory", &st.Memory.Usage},
		{"memory.memsw", &st.Memory.Swap},
		{"memory.kmem", &st.Memory.Kernel},
		{"memory.kmem.tcp", &st.Memory.KernelTCP},
	}
	for i, x := range entries {
		err := readMemoryEntryV1(d, x.prefix, x.e)
		// Only the base counters are mandatory: memsw exists only with
		// swap accounting and kmem only on kernels built with it.
		if err != nil && (i == 0 || !errors.Is(err, os.ErrNotExist)) {
			return err
		}
	}
	return nil
}

func readMemoryEntryV1(d, prefix string, e *MemoryEntry) error {
	var err error
	if e.Usage, err = readUint(d, prefix+".usage_in_bytes"); err != nil {
		return err
	}
	if e.Max, err = readUint(d, prefix+".max_usage_in_bytes"); err != nil {
		return err
	}
	if e.Limit, err = readUint(d, prefix+".limit_in_bytes"); err != nil {
		return err
	}
	if e.Failcnt, err = readUint(d, prefix+".failcnt"); err != nil {
		return err
	}
	return nil
}

func statPidsV1(d string, st *Stats) error {
	return statPids(d, st)
}

// statPids reads pids.current and pids.max, which v1 and v2 share.
func statPids(d string, st *Stats) error {
	cur, err := readUint(d, "pids.current")
	if err != nil {
		return err
	}
	limit, err := readUint(d, "pids.max")
	if err != nil {
		return err
	}
	if limit == ^uint64(0) {
		limit = 0 // runc reports "max" as 0
	}
	st.Pids = Pids{Current: cur, Limit: limit}
	return nil
}

func statBlkioV1(d string, st *Stats) error {
	// CFQ's counters if present, else BFQ's (5.0+ kernels), else the
	// throttling layer's, which count every I/O regardless of scheduler.
	for _, prefix := range []string{"blkio.", "blkio.bfq.", "blkio.throttle."} {
		if !fileExists(d + "/" + prefix + "io_service_bytes_recursive") {
			continue
		}
		var err error
		if st.Blkio.IoServiceBytesRecursive, err = readBlkioV1(d, prefix+"io_service_bytes_recursive"); err != nil {
			return err
		}
		if st.Blkio.IoServicedRecursive, err = readBlkioV1(d, prefix+"io_serviced_recursive"); err != nil {
			return err
		}
		return nil
	}
	return nil
}

// readBlkioV1 parses "major:minor Op value" lines; the trailing "Total n"
// line is skipped, as runc does.
func readBlkioV1(d, name string) ([]BlkioEntry, error) {
	s, err := readFile(d, name)
	if err != nil {
		return nil, err
	}
	var out []BlkioEntry
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		maj, min, ok := strings.Cut(f[0], ":")
		if !ok {
			continue
		}
		e := BlkioEntry{Op: f[1]}
		var e1, e2, e3 error
		e.Major, e1 = strconv.ParseUint(maj, 10, 64)
		e.Minor, e2 = strconv.ParseUint(min, 10, 64)
		e.Value, e3 = strconv.ParseUint(f[2], 10, 64)
		if err := errors.Join(e1, e2, e3); err != nil {
			return nil, fmt.Errorf("parse %s line %q: %w", name, line, err)
		}
		out = append(out, e)
	}
	return out, nil
}

// hugePageSizes lists the host's huge page sizes in cgroup notation
// ("2MB", "1GB") from /sys/kernel/mm/hugepages/hugepages-<n>kB.
func hugePageSizes() []string {
	ents, err := os.ReadDir("/sys/kernel/mm/hugepages")
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		s, ok := strings.CutPrefix(e.Name(), "hugepages-")
		if !ok {
			continue
		}
		s, ok = strings.CutSuffix(s, "kB")
		if !ok {
			continue
		}
		kb, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			continue
		}
		out = append(out, pageSizeName(kb))
	}
	return out
}

// pageSizeName is the kernel's hugetlb cgroup file name for a page size.
func pageSizeName(kb uint64) string {
	switch {
	case kb >= 1<<20 && kb%(1<<20) == 0:
		return strconv.FormatUint(kb>>20, 10) + "GB"
	case kb >= 1<<10 && kb%(1<<10) == 0:
		return strconv.FormatUint(kb>>10, 10) + "MB"
	}
	return strconv.FormatUint(kb, 10) + "KB"
}

func statHugetlbV1(d string, st *Stats) error {
	for _, size := range hugePageSizes() {
		var h Hugetlb
		var e1, e2, e3 error
		h.Usage, e1 = readUint(d, "hugetlb."+size+".usage_in_bytes")
		h.Max, e2 = readUint(d, "hugetlb."+size+".max_usage_in_bytes")
		h.Failcnt, e3 = readUint(d, "hugetlb."+size+".failcnt")
		if err := errors.Join(e1, e2, e3); err != nil {
			return err
		}
		if st.Hugetlb == nil {
			st.Hugetlb = map[string]Hugetlb{}
		}
		st.Hugetlb[size] = h
	}
	return nil
}
