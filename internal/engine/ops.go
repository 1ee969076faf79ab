package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Top lists the container's processes: the runtime's pid list, then ps(1)
// restricted to those pids (Docker's container.TopResponse).
func (e *Engine) Top(ctx context.Context, ref string, psArgs []string) (container.TopResponse, error) {
	var resp container.TopResponse
	c, err := e.lookupContainer(ref)
	if err != nil {
		return resp, err
	}
	if st := e.state(c); st.Status != "running" {
		return resp, fmt.Errorf("container %s is not running: %w", c.ID, errdefs.ErrConflict)
	}
	out, err := e.ctrRuntimeCmd(ctx, c, "ps", "--format", "json", c.ID).Output()
	if err != nil {
		return resp, fmt.Errorf("top %s: %w", c.Name, err)
	}
	var pids []int
	if err := json.Unmarshal(out, &pids); err != nil {
		return resp, fmt.Errorf("top %s: %w", c.Name, err)
	}
	if len(psArgs) == 0 {
		psArgs = []string{"-ef"}
	}
	psOut, err := exec.CommandContext(ctx, "ps", psArgs...).Output()
	if err != nil {
		return resp, fmt.Errorf("top %s: ps %s: %w", c.Name, strings.Join(psArgs, " "), err)
	}
	lines := strings.Split(strings.TrimRight(string(psOut), "\n"), "\n")
	resp.Titles = strings.Fields(lines[0])
	pidCol := -1
	for i, t := range resp.Titles {
		if t == "PID" {
			pidCol = i
		}
	}
	if pidCol < 0 {
		return resp, fmt.Errorf("couldn't find PID field in ps output: %w", errdefs.ErrInvalidArgument)
	}
	want := map[int]bool{}
	for _, p := range pids {
		want[p] = true
	}
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) <= pidCol {
			continue
		}
		p, _ := strconv.Atoi(f[pidCol])
		if !want[p] {
			continue
		}
		// The last column (the command) may hold spaces.
		n := len(resp.Titles)
		if len(f) > n {
			f = append(f[:n-1], strings.Join(f[n-1:], " "))
		}
		resp.Processes = append(resp.Processes, f)
	}
	return resp, nil
}

// ContainerStats samples the container's cgroup through the runtime.
func (e *Engine) ContainerStats(ctx context.Context, ref string) (Stats, error) {
	c, err := e.lookupContainer(ref)
	if err != nil {
		return Stats{}, err
	}
	s := Stats{ID: c.ID, Name: c.Name, Read: time.Now(), OnlineCPUs: onlineCPUs()}
	if st := e.state(c); st.Status != "running" {
		return s, nil
	}
	out, err := e.ctrRuntimeCmd(ctx, c, "events", "--stats", c.ID).Output()
	if err != nil {
		return s, fmt.Errorf("stats %s: %w", c.Name, err)
	}
	var ev struct {
		Data struct {
			CPU struct {
				Usage struct{ Total uint64 }
			}
			Memory struct {
				Cache uint64
				Usage struct{ Usage, Limit uint64 }
				Raw   map[string]uint64
			}
			Pids  struct{ Current uint64 }
			Blkio struct {
				IoServiceBytesRecursive []struct {
					Op    string
					Value uint64
				}
			}
		}
	}
	if err := json.Unmarshal(out, &ev); err != nil {
		return s, fmt.Errorf("stats %s: %w", c.Name, err)
	}
	d := ev.Data
	s.CPUNanos, s.MemUsage, s.MemLimit, s.Pids = d.CPU.Usage.Total, d.Memory.Usage.Usage, d.Memory.Usage.Limit, d.Pids.Current
	s.MemCache = d.Memory.Cache
	if v, ok := d.Memory.Raw["inactive_file"]; ok {
		s.MemCache = v
	}
	for _, b := range d.Blkio.IoServiceBytesRecursive {
		switch strings.ToLower(b.Op) {
		case "read":
			s.BlkRead += b.Value
		case "write":
			s.BlkWrite += b.Value
		}
	}
	if s.MemLimit == 0 || s.MemLimit > 1<<60 {
		s.MemLimit = hostMemory()
	}
	return s, nil
}

func onlineCPUs() int {
	b, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		return 1
	}
	n := 0
	for _, r := range strings.Split(strings.TrimSpace(string(b)), ",") {
		lo, hi, ok := strings.Cut(r, "-")
		a, _ := strconv.Atoi(lo)
		z := a
		if ok {
			z, _ = strconv.Atoi(hi)
		}
		n += z - a + 1
	}
	return max(n, 1)
}

func hostMemory() uint64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "MemTotal:") {
			f := strings.Fields(l)
			if len(f) >= 2 {
				n, _ := strconv.ParseUint(f[1], 10, 64)
				return n * 1024
			}
		}
	}
	return 0
}

// Update changes a container's resource limits: the record (for the next
// start) and, when it runs, its cgroup through the runtime.
func (e *Engine) Update(ctx context.Context, ref string, r container.Resources, restart *container.RestartPolicy) error {
	c, err := e.lookupContainer(ref)
	if err != nil {
		return err
	}
	c, err = e.updateContainer(c.ID, func(c *Container) error {
		res := &c.HostConfig.Resources
		if r.Memory != 0 {
			res.Memory = r.Memory
		}
		if r.MemorySwap != 0 {
			res.MemorySwap = r.MemorySwap
		}
		if r.MemoryReservation != 0 {
			res.MemoryReservation = r.MemoryReservation
		}
		if r.CPUShares != 0 {
			res.CPUShares = r.CPUShares
		}
		if r.NanoCPUs != 0 {
			res.NanoCPUs = r.NanoCPUs
		}
		if r.CPUQuota != 0 {
			res.CPUQuota = r.CPUQuota
		}
		if r.CPUPeriod != 0 {
			res.CPUPeriod = r.CPUPeriod
		}
		if r.CpusetCpus != "" {
			res.CpusetCpus = r.CpusetCpus
		}
		if r.CpusetMems != "" {
			res.CpusetMems = r.CpusetMems
		}
		if r.PidsLimit != nil {
			res.PidsLimit = r.PidsLimit
		}
		if r.BlkioWeight != 0 {
			res.BlkioWeight = r.BlkioWeight
		}
		if restart != nil {
			c.HostConfig.RestartPolicy = *restart
		}
		return nil
	})
	if err != nil {
		return err
	}
	if st := e.state(c); st.Status == "running" {
		b, err := json.Marshal(linuxResources(r))
		if err != nil {
			return err
		}
		cmd := e.ctrRuntimeCmd(ctx, c, "update", "--resources", "-", c.ID)
		cmd.Stdin = strings.NewReader(string(b))
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("update %s: %s: %w", c.Name, strings.TrimSpace(string(out)), err)
		}
	}
	e.emit(events.ContainerEventType, events.ActionUpdate, c, nil)
	return nil
}

// linuxResources converts the changed Docker resources to the OCI form.
func linuxResources(r container.Resources) *specs.LinuxResources {
	out := &specs.LinuxResources{}
	if r.Memory != 0 || r.MemorySwap != 0 || r.MemoryReservation != 0 {
		out.Memory = &specs.LinuxMemory{}
		if r.Memory != 0 {
			out.Memory.Limit = &r.Memory
		}
		if r.MemorySwap != 0 {
			out.Memory.Swap = &r.MemorySwap
		}
		if r.MemoryReservation != 0 {
			out.Memory.Reservation = &r.MemoryReservation
		}
	}
	cpu := &specs.LinuxCPU{}
	set := false
	if r.CPUShares != 0 {
		v := uint64(r.CPUShares)
		cpu.Shares, set = &v, true
	}
	if r.NanoCPUs != 0 {
		period := uint64(100000)
		quota := r.NanoCPUs * int64(period) / 1e9
		cpu.Period, cpu.Quota, set = &period, &quota, true
	}
	if r.CPUQuota != 0 {
		cpu.Quota, set = &r.CPUQuota, true
	}
	if r.CPUPeriod != 0 {
		v := uint64(r.CPUPeriod)
		cpu.Period, set = &v, true
	}
	if r.CpusetCpus != "" {
		cpu.Cpus, set = r.CpusetCpus, true
	}
	if r.CpusetMems != "" {
		cpu.Mems, set = r.CpusetMems, true
	}
	if set {
		out.CPU = cpu
	}
	if r.PidsLimit != nil {
		out.Pids = &specs.LinuxPids{Limit: r.PidsLimit}
	}
	if r.BlkioWeight != 0 {
		w := r.BlkioWeight
		out.BlockIO = &specs.LinuxBlockIO{Weight: &w}
	}
	return out
}

// PruneContainers removes every stopped container matching filters
// (until, label, label!: the filters of dockerd's POST /containers/prune).
func (e *Engine) PruneContainers(ctx context.Context, filters map[string][]string) (container.PruneReport, error) {
	var rep container.PruneReport
	all, err := e.listContainers()
	if err != nil {
		return rep, err
	}
	pf, err := parsePruneFilter(filters, time.Now())
	if err != nil {
		return rep, err
	}
	for _, c := range all {
		if st := e.state(c); st.Status == "running" || st.MonitorAlive {
			continue
		}
		if pf.keeps(c.Created, c.Config.Labels) {
			continue
		}
		size, _ := e.snaps.Usage(ctx, c.Snapshot)
		if err := e.Remove(ctx, c.ID, RemoveOptions{}); err != nil {
			if errdefs.IsConflict(err) || errdefs.IsNotFound(err) {
				continue
			}
			return rep, err
		}
		rep.ContainersDeleted = append(rep.ContainersDeleted, c.ID)
		rep.SpaceReclaimed += uint64(max(size, 0))
	}
	return rep, nil
}
