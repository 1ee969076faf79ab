package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// cpuPeriod is the CFS period --cpus uses (Docker's 100 ms).
const cpuPeriod = 100000

// minMemory is Docker's smallest memory limit.
const minMemory = 6 * 1024 * 1024

// containerResources turns Docker's resource settings into the OCI cgroup
// section, with Docker's validation and defaults.
func containerResources(r *container.Resources) (*specs.LinuxResources, error) {
	out := &specs.LinuxResources{}
	i64 := func(v int64) *int64 { return &v }
	if r.Memory != 0 || r.MemorySwap != 0 || r.MemoryReservation != 0 {
		if r.Memory != 0 && r.Memory < minMemory {
			return nil, fmt.Errorf("minimum memory limit allowed is 6MB: %w", errdefs.ErrInvalidArgument)
		}
		if r.MemorySwap > 0 && r.Memory == 0 {
			return nil, fmt.Errorf("you should always set the memory limit when using memoryswap limit, see usage: %w", errdefs.ErrInvalidArgument)
		}
		if r.MemorySwap > 0 && r.MemorySwap < r.Memory {
			return nil, fmt.Errorf("minimum memoryswap limit should be larger than memory limit, see usage: %w", errdefs.ErrInvalidArgument)
		}
		if r.Memory > 0 && r.MemoryReservation > r.Memory {
			return nil, fmt.Errorf("minimum memory limit can not be less than memory reservation limit, see usage: %w", errdefs.ErrInvalidArgument)
		}
		m := &specs.LinuxMemory{}
		if r.Memory > 0 {
			m.Limit = i64(r.Memory)
			// OCI's swap is memory+swap, like Docker's --memory-swap. Unset
			// means "as much swap as memory" (Docker's default); -1 is
			// unlimited.
			switch {
			case r.MemorySwap == 0:
				m.Swap = i64(2 * r.Memory)
			default:
				m.Swap = i64(r.MemorySwap)
			}
		}
		if r.MemoryReservation > 0 {
			m.Reservation = i64(r.MemoryReservation)
		}
		out.Memory = m
	}
	if r.NanoCPUs != 0 || r.CPUShares != 0 || r.CpusetCpus != "" || r.CpusetMems != "" || r.CPUQuota != 0 {
		c := &specs.LinuxCPU{Cpus: r.CpusetCpus, Mems: r.CpusetMems}
		if r.NanoCPUs < 0 {
			return nil, fmt.Errorf("range of CPUs is from 0.01 to the number of CPUs available: %w", errdefs.ErrInvalidArgument)
		}
		if r.NanoCPUs > 0 && (r.CPUQuota > 0 || r.CPUPeriod > 0) {
			return nil, fmt.Errorf("conflicting options: Nano CPUs and CPU Period/Quota cannot both be set: %w", errdefs.ErrInvalidArgument)
		}
		if r.NanoCPUs > 0 {
			quota := r.NanoCPUs * cpuPeriod / 1e9
			period := uint64(cpuPeriod)
			c.Quota, c.Period = &quota, &period
		} else if r.CPUQuota > 0 {
			quota, period := r.CPUQuota, uint64(r.CPUPeriod)
			if period == 0 {
				period = cpuPeriod
			}
			c.Quota, c.Period = &quota, &period
		}
		if r.CPUShares < 0 {
			return nil, fmt.Errorf("invalid CPU shares (%d): value must be a positive integer: %w", r.CPUShares, errdefs.ErrInvalidArgument)
		}
		if r.CPUShares > 0 {
			s := uint64(r.CPUShares)
			c.Shares = &s
		}
		out.CPU = c
	}
	if r.PidsLimit != nil {
		// Docker: 0 and -1 both mean unlimited.
		l := *r.PidsLimit
		if l <= 0 {
			l = -1
		}
		out.Pids = &specs.LinuxPids{Limit: &l}
	}
	return out, nil
}

// rlimitNames are the names --ulimit accepts.
var rlimitNames = map[string]bool{
	"core": true, "cpu": true, "data": true, "fsize": true, "locks": true, "memlock": true,
	"msgqueue": true, "nice": true, "nofile": true, "nproc": true, "rss": true, "rtprio": true,
	"rttime": true, "sigpending": true, "stack": true, "as": true,
}

func containerRlimits(list []*container.Ulimit) ([]specs.POSIXRlimit, error) {
	var out []specs.POSIXRlimit
	for _, u := range list {
		if u == nil {
			continue
		}
		if !rlimitNames[u.Name] {
			return nil, fmt.Errorf("invalid ulimit type: %s: %w", u.Name, errdefs.ErrInvalidArgument)
		}
		if u.Soft > u.Hard && u.Hard != -1 {
			return nil, fmt.Errorf("ulimit soft limit must be less than or equal to hard limit: %d > %d: %w", u.Soft, u.Hard, errdefs.ErrInvalidArgument)
		}
		out = append(out, specs.POSIXRlimit{Type: "RLIMIT_" + strings.ToUpper(u.Name), Soft: uint64(u.Soft), Hard: uint64(u.Hard)})
	}
	return out, nil
}

// validateSysctls allows only namespaced sysctls, as Docker does: IPC ones
// (the container has its own IPC namespace), UTS names, and net.* (its own
// network namespace, unless it shares the host's).
func validateSysctls(m map[string]string, hostNet bool) error {
	ipc := []string{"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
		"kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"}
	for k := range m {
		ok := strings.HasPrefix(k, "fs.mqueue.") || k == "kernel.domainname" || k == "kernel.hostname"
		for _, n := range ipc {
			ok = ok || k == n
		}
		if strings.HasPrefix(k, "net.") {
			if hostNet {
				return fmt.Errorf("sysctl %q not allowed in host network namespace: %w", k, errdefs.ErrInvalidArgument)
			}
			ok = true
		}
		if !ok {
			return fmt.Errorf("sysctl %q is not allowed: only namespaced sysctls (kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.*, net.*) can be set: %w", k, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

// validateOOMScoreAdj checks the range and, because the runtime can only
// lower a score with CAP_SYS_RESOURCE, refuses up front a value below our
// own when we lack it, naming the capability, rather than failing the
// start with a bare "permission denied".
func validateOOMScoreAdj(v int) error {
	if v < -1000 || v > 1000 {
		return fmt.Errorf("invalid value %d, range for oom score adj is [-1000, 1000]: %w", v, errdefs.ErrInvalidArgument)
	}
	b, err := os.ReadFile("/proc/self/oom_score_adj")
	if err != nil {
		return nil // let the runtime decide
	}
	cur, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err == nil && v < cur && !heldCaps()(24) { // 24: CAP_SYS_RESOURCE
		return fmt.Errorf("--oom-score-adj %d: lowering the OOM score below this berth's own (%d) needs CAP_SYS_RESOURCE, which this berth process does not hold: %w", v, cur, errdefs.ErrPermission)
	}
	return nil
}

// containerDevices resolves --device host[:container[:perms]] mappings into
// device nodes and cgroup rules. A host directory maps every device under it.
func containerDevices(list []container.DeviceMapping) ([]specs.LinuxDevice, []specs.LinuxDeviceCgroup, error) {
	var devs []specs.LinuxDevice
	var rules []specs.LinuxDeviceCgroup
	for _, m := range list {
		perms := m.CgroupPermissions
		if perms == "" {
			perms = "rwm"
		}
		if strings.Trim(perms, "rwm") != "" {
			return nil, nil, fmt.Errorf("invalid device permissions %q for %s: %w", perms, m.PathOnHost, errdefs.ErrInvalidArgument)
		}
		dst := m.PathInContainer
		if dst == "" {
			dst = m.PathOnHost
		}
		found, err := hostDevices(m.PathOnHost)
		if err != nil {
			return nil, nil, fmt.Errorf("error gathering device information while adding custom device %q: %w", m.PathOnHost, err)
		}
		for _, d := range found {
			rel, _ := filepath.Rel(m.PathOnHost, d.Path)
			d.Path = filepath.Join(dst, rel)
			devs = append(devs, d)
			major, minor := d.Major, d.Minor
			rules = append(rules, specs.LinuxDeviceCgroup{Allow: true, Type: d.Type, Major: &major, Minor: &minor, Access: perms})
		}
	}
	return devs, rules, nil
}
