package cli

import (
	"fmt"
	"math/big"
	"strings"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/spf13/pflag"
)

// resourceOptions applies --ulimit, --sysctl and the cgroup limits (memory,
// CPU, pids, OOM score).
func (f *createFlags) resourceOptions(fl *pflag.FlagSet, hc *container.HostConfig) error {
	for _, u := range f.ulimits {
		l, err := units.ParseUlimit(u)
		if err != nil {
			return fmt.Errorf("invalid argument %q for \"--ulimit\" flag: %w", u, err)
		}
		hc.Ulimits = append(hc.Ulimits, l)
	}
	for _, s := range f.sysctls {
		k, v, ok := strings.Cut(s, "=")
		if !ok || k == "" {
			return fmt.Errorf("invalid argument %q for \"--sysctl\" flag: sysctl '%s' is not allowed", s, s)
		}
		if hc.Sysctls == nil {
			hc.Sysctls = map[string]string{}
		}
		hc.Sysctls[k] = v
	}
	r := &hc.Resources
	for _, sz := range []struct {
		flag, val string
		dst       *int64
	}{
		{"memory", f.memory, &r.Memory},
		{"memory-reservation", f.memoryReservation, &r.MemoryReservation},
		{"shm-size", f.shmSize, &hc.ShmSize},
	} {
		if sz.val == "" {
			continue
		}
		n, err := units.RAMInBytes(sz.val)
		if err != nil {
			return fmt.Errorf("invalid argument %q for \"--%s\" flag: %w", sz.val, sz.flag, err)
		}
		*sz.dst = n
	}
	switch f.memorySwap {
	case "":
	case "-1":
		r.MemorySwap = -1
	default:
		n, err := units.RAMInBytes(f.memorySwap)
		if err != nil {
			return fmt.Errorf("invalid argument %q for \"--memory-swap\" flag: %w", f.memorySwap, err)
		}
		r.MemorySwap = n
	}
	if f.cpus != "" {
		n, err := parseCPUs(f.cpus)
		if err != nil {
			return err
		}
		r.NanoCPUs = n
	}
	r.CPUShares, r.CpusetCpus, r.CpusetMems = f.cpuShares, f.cpusetCPUs, f.cpusetMems
	if fl.Changed("pids-limit") {
		n := f.pidsLimit
		r.PidsLimit = &n
	}
	hc.OomScoreAdj = f.oomScoreAdj
	return nil
}

// parseCPUs reads --cpus as a decimal number of CPUs, in nano-CPUs.
func parseCPUs(s string) (int64, error) {
	r, ok := new(big.Rat).SetString(s)
	if !ok || r.Sign() < 0 {
		return 0, fmt.Errorf("invalid argument %q for \"--cpus\" flag: failed to parse %v as a rational number", s, s)
	}
	nano := r.Mul(r, big.NewRat(1e9, 1))
	if !nano.IsInt() {
		return 0, fmt.Errorf("invalid argument %q for \"--cpus\" flag: value is too precise", s)
	}
	return nano.Num().Int64(), nil
}
