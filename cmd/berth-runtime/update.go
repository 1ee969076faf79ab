//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func cmdUpdate(g *globals, args []string) error {
	fs := newFlags("update")
	resources := fs.String("resources", "", "path to a LinuxResources JSON file, or - for stdin")
	fs.StringVar(resources, "r", "", "resources file (short)")
	memory := fs.String("memory", "", "memory limit in bytes (suffixes k, m, g)")
	memSwap := fs.String("memory-swap", "", "memory+swap limit in bytes, -1 for unlimited")
	memRes := fs.String("memory-reservation", "", "memory soft limit in bytes")
	cpuShares := fs.String("cpu-shares", "", "CPU shares")
	cpuQuota := fs.String("cpu-quota", "", "CFS quota in microseconds")
	cpuPeriod := fs.String("cpu-period", "", "CFS period in microseconds")
	cpusetCpus := fs.String("cpuset-cpus", "", "CPUs allowed (e.g. 0-1)")
	cpusetMems := fs.String("cpuset-mems", "", "memory nodes allowed")
	pids := fs.String("pids-limit", "", "maximum number of processes")
	blkioWeight := fs.String("blkio-weight", "", "block IO weight (10-1000)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	id, err := oneID(fs)
	if err != nil {
		return err
	}
	res := &specs.LinuxResources{}
	if *resources != "" {
		data, err := readFileOrStdin(*resources)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(data, res); err != nil {
			return fmt.Errorf("update: parse resources: %w", err)
		}
	}
	setInt := func(s string, dst **int64) error {
		if s == "" {
			return nil
		}
		v, err := parseBytes(s)
		if err != nil {
			return err
		}
		*dst = &v
		return nil
	}
	setUint := func(s string, dst **uint64) error {
		if s == "" {
			return nil
		}
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return fmt.Errorf("update: invalid number %q", s)
		}
		*dst = &v
		return nil
	}
	if *memory != "" || *memSwap != "" || *memRes != "" {
		if res.Memory == nil {
			res.Memory = &specs.LinuxMemory{}
		}
		for _, p := range []struct {
			s   string
			dst **int64
		}{{*memory, &res.Memory.Limit}, {*memSwap, &res.Memory.Swap}, {*memRes, &res.Memory.Reservation}} {
			if err := setInt(p.s, p.dst); err != nil {
				return err
			}
		}
	}
	if *cpuShares != "" || *cpuQuota != "" || *cpuPeriod != "" || *cpusetCpus != "" || *cpusetMems != "" {
		if res.CPU == nil {
			res.CPU = &specs.LinuxCPU{}
		}
		if err := setUint(*cpuShares, &res.CPU.Shares); err != nil {
			return err
		}
		if err := setInt(*cpuQuota, &res.CPU.Quota); err != nil {
			return err
		}
		if err := setUint(*cpuPeriod, &res.CPU.Period); err != nil {
			return err
		}
		res.CPU.Cpus, res.CPU.Mems = *cpusetCpus, *cpusetMems
	}
	if *pids != "" {
		v, err := strconv.ParseInt(*pids, 10, 64)
		if err != nil {
			return fmt.Errorf("update: invalid pids limit %q", *pids)
		}
		res.Pids = &specs.LinuxPids{Limit: &v}
	}
	if *blkioWeight != "" {
		v, err := strconv.ParseUint(*blkioWeight, 10, 16)
		if err != nil {
			return fmt.Errorf("update: invalid blkio weight %q", *blkioWeight)
		}
		w := uint16(v)
		res.BlockIO = &specs.LinuxBlockIO{Weight: &w}
	}
	return rt(g).Update(id, res)
}

// parseBytes accepts plain numbers, -1 and k/m/g suffixes.
func parseBytes(s string) (int64, error) {
	mult := int64(1)
	t := strings.ToLower(strings.TrimSpace(s))
	switch {
	case strings.HasSuffix(t, "k"), strings.HasSuffix(t, "kb"):
		mult, t = 1<<10, strings.TrimRight(t, "kb")
	case strings.HasSuffix(t, "m"), strings.HasSuffix(t, "mb"):
		mult, t = 1<<20, strings.TrimRight(t, "mb")
	case strings.HasSuffix(t, "g"), strings.HasSuffix(t, "gb"):
		mult, t = 1<<30, strings.TrimRight(t, "gb")
	}
	v, err := strconv.ParseInt(t, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid size %q", s)
	}
	if v < 0 {
		return v, nil
	}
	return v * mult, nil
}
