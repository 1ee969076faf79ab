package runtime

import (
	"encoding/json"
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/cgroups"
	"github.com/berth-dev/berth/internal/errdefs"
)

// Pids lists the processes in the container's cgroup.
func (r *Runtime) Pids(id string) ([]int, error) {
	c, err := r.Load(id)
	if err != nil {
		return nil, err
	}
	cg, err := c.cgroup()
	if err != nil {
		return nil, err
	}
	return cg.Pids()
}

// Stats reads the container's cgroup statistics.
func (r *Runtime) Stats(id string) (*cgroups.Stats, error) {
	c, err := r.Load(id)
	if err != nil {
		return nil, err
	}
	if !c.Alive() {
		return nil, fmt.Errorf("container %s is not running: %w", id, errdefs.ErrNotRunning)
	}
	cg, err := c.cgroup()
	if err != nil {
		return nil, err
	}
	return cg.Stats()
}

// OOMKills is the number of OOM kills the kernel made in the container.
func (r *Runtime) OOMKills(id string) (uint64, error) {
	c, err := r.Load(id)
	if err != nil {
		return 0, err
	}
	if !c.Alive() {
		return 0, fmt.Errorf("container %s is not running: %w", id, errdefs.ErrNotRunning)
	}
	cg, err := c.cgroup()
	if err != nil {
		return 0, err
	}
	return cg.OOMKillCount()
}

// Update applies new resource limits to a live container and records them.
func (r *Runtime) Update(id string, res *specs.LinuxResources) error {
	c, err := r.Load(id)
	if err != nil {
		return err
	}
	if !c.Alive() {
		return fmt.Errorf("container %s is not running: %w", id, errdefs.ErrNotRunning)
	}
	cg, err := c.cgroup()
	if err != nil {
		return err
	}
	if err := cg.Set(res); err != nil {
		return err
	}
	spec, err := c.Spec()
	if err != nil {
		return err
	}
	mergeResources(spec, res)
	if c.Config, err = json.Marshal(spec); err != nil {
		return err
	}
	return c.save()
}

func mergeResources(s *specs.Spec, res *specs.LinuxResources) {
	if s.Linux.Resources == nil {
		s.Linux.Resources = &specs.LinuxResources{}
	}
	cur := s.Linux.Resources
	if res.Memory != nil {
		cur.Memory = res.Memory
	}
	if res.CPU != nil {
		cur.CPU = res.CPU
	}
	if res.Pids != nil {
		cur.Pids = res.Pids
	}
	if res.BlockIO != nil {
		cur.BlockIO = res.BlockIO
	}
	if len(res.HugepageLimits) > 0 {
		cur.HugepageLimits = res.HugepageLimits
	}
	if len(res.Unified) > 0 {
		cur.Unified = res.Unified
	}
}
