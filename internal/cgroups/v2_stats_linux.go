package cgroups

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Stats reads the v2 counters. Controllers not enabled for the cgroup leave
// their section zero.
func (m *v2Manager) Stats() (*Stats, error) {
	st := &Stats{}
	readers := []struct {
		file string // present iff the controller is enabled
		read func(string, *Stats) error
	}{
		{"cpu.stat", statCPUV2},
		{"memory.stat", statMemoryV2},
		{"pids.current", statPids},
		{"io.stat", statIOV2},
	}
	for _, r := range readers {
		if err := r.read(m.dir, st); err != nil {
			if errors.Is(err, os.ErrNotExist) && !m.hasFile(r.file) && fileExists(m.dir) {
				continue
			}
			return nil, fmt.Errorf("cgroups: stats %s: %w", m.path, err)
		}
	}
	if err := statHugetlbV2(m.dir, st); err != nil {
		return nil, fmt.Errorf("cgroups: stats %s: %w", m.path, err)
	}
	return st, nil
}

func statCPUV2(d string, st *Stats) error {
	kv, err := readKeyValues(d, "cpu.stat")
	if err != nil {
		return err
	}
	// v2 counts in microseconds; the Stats format is nanoseconds.
	st.CPU.Usage.Total = kv["usage_usec"] * 1000
	st.CPU.Usage.User = kv["user_usec"] * 1000
	st.CPU.Usage.Kernel = kv["system_usec"] * 1000
	st.CPU.Throttling = Throttling{
		Periods:          kv["nr_periods"],
		ThrottledPeriods: kv["nr_throttled"],
		ThrottledTime:    kv["throttled_usec"] * 1000,
	}
	return nil
}

func statMemoryV2(d string, st *Stats) error {
	raw, err := readKeyValues(d, "memory.stat")
	if err != nil {
		return err
	}
	st.Memory.Raw = raw
	st.Memory.Cache = raw["file"]
	if st.Memory.Usage.Usage, err = readUint(d, "memory.current"); err != nil {
		return err
	}
	if st.Memory.Usage.Limit, err = readUint(d, "memory.max"); err != nil {
		return err
	}
	if peak, err := readUint(d, "memory.peak"); err == nil { // 5.19+
		st.Memory.Usage.Max = peak
	}
	// memory.events "max" counts how often usage hit memory.max, the
	// nearest v2 analogue of v1's failcnt.
	if ev, err := readKeyValues(d, "memory.events"); err == nil {
		st.Memory.Usage.Failcnt = ev["max"]
	}
	// Like runc, report swap as memory+swap so numbers compare with v1.
	if sw, err := readUint(d, "memory.swap.current"); err == nil {
		st.Memory.Swap.Usage = st.Memory.Usage.Usage + sw
		if lim, err := readUint(d, "memory.swap.max"); err == nil {
			if lim == ^uint64(0) || st.Memory.Usage.Limit == ^uint64(0) {
				st.Memory.Swap.Limit = ^uint64(0)
			} else {
				st.Memory.Swap.Limit = st.Memory.Usage.Limit + lim
			}
		}
	}
	return nil
}

// statIOV2 parses io.stat lines: "maj:min rbytes=N wbytes=N rios=N wios=N
// dbytes=N dios=N".
func statIOV2(d string, st *Stats) error {
	s, err := readFile(d, "io.stat")
	if err != nil {
		return err
	}
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		maj, min, ok := strings.Cut(f[0], ":")
		if !ok {
			continue
		}
		major, err1 := strconv.ParseUint(maj, 10, 64)
		minor, err2 := strconv.ParseUint(min, 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		for _, kv := range f[1:] {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				continue
			}
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				continue
			}
			e := BlkioEntry{Major: major, Minor: minor, Value: n}
			switch k {
			case "rbytes":
				e.Op = "Read"
				st.Blkio.IoServiceBytesRecursive = append(st.Blkio.IoServiceBytesRecursive, e)
			case "wbytes":
				e.Op = "Write"
				st.Blkio.IoServiceBytesRecursive = append(st.Blkio.IoServiceBytesRecursive, e)
			case "rios":
				e.Op = "Read"
				st.Blkio.IoServicedRecursive = append(st.Blkio.IoServicedRecursive, e)
			case "wios":
				e.Op = "Write"
				st.Blkio.IoServicedRecursive = append(st.Blkio.IoServicedRecursive, e)
			}
		}
	}
	return nil
}

func statHugetlbV2(d string, st *Stats) error {
	for _, size := range hugePageSizes() {
		cur, err := readUint(d, "hugetlb."+size+".current")
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil // controller not enabled here
			}
			return err
		}
		h := Hugetlb{Usage: cur}
		if ev, err := readKeyValues(d, "hugetlb."+size+".events"); err == nil {
			h.Failcnt = ev["max"]
		}
		if st.Hugetlb == nil {
			st.Hugetlb = map[string]Hugetlb{}
		}
		st.Hugetlb[size] = h
	}
	return nil
}
