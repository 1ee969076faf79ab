package engine

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
)

// List returns container summaries, newest first. It reads only records
// and monitor.json files (no runtime process per container), so it stays
// fast with hundreds of containers.
func (e *Engine) List(ctx context.Context, opts ListOptions) ([]container.Summary, error) {
	all, err := e.listContainers()
	if err != nil {
		return nil, err
	}
	for k := range opts.Filters {
		switch k {
		case "status", "name", "id", "label", "ancestor", "exited", "before", "since", "health":
		default:
			return nil, fmt.Errorf("invalid filter '%s': %w", k, errdefs.ErrInvalidArgument)
		}
	}
	var beforeT, sinceT time.Time
	for _, ref := range opts.Filters["before"] {
		c, err := e.lookupContainer(ref)
		if err != nil {
			return nil, err
		}
		beforeT = c.Created
	}
	for _, ref := range opts.Filters["since"] {
		c, err := e.lookupContainer(ref)
		if err != nil {
			return nil, err
		}
		sinceT = c.Created
	}
	var ancestors []string
	for _, ref := range opts.Filters["ancestor"] {
		if img, err := e.images.Get(ctx, ref); err == nil {
			ancestors = append(ancestors, img.ID.String())
		} else {
			ancestors = append(ancestors, ref)
		}
	}
	all_ := opts.All || opts.Limit > 0 || len(opts.Filters["status"]) > 0 || len(opts.Filters["exited"]) > 0
	var out []container.Summary
	for _, c := range all {
		if opts.Limit > 0 && len(out) >= opts.Limit {
			break
		}
		if !beforeT.IsZero() && !c.Created.Before(beforeT) || !sinceT.IsZero() && !c.Created.After(sinceT) {
			continue
		}
		st := e.state(c)
		s := e.summary(ctx, c, st, opts.Size)
		if !all_ && s.State != container.StateRunning && s.State != container.StatePaused && s.State != container.StateRestarting {
			continue
		}
		if !matchFilters(opts.Filters, c, st, s, ancestors) {
			continue
		}
		out = append(out, s)
	}
	return out, nil
}

func matchFilters(f map[string][]string, c *Container, st ContainerState, s container.Summary, ancestors []string) bool {
	any := func(key string, ok func(v string) bool) bool {
		vals := f[key]
		if len(vals) == 0 {
			return true
		}
		for _, v := range vals {
			if ok(v) {
				return true
			}
		}
		return false
	}
	return any("status", func(v string) bool { return string(s.State) == v }) &&
		any("name", func(v string) bool { return matchName(v, c.Name) }) &&
		any("id", func(v string) bool { return strings.HasPrefix(c.ID, v) }) &&
		any("exited", func(v string) bool { return st.Status == "exited" && strconv.Itoa(st.ExitCode) == v }) &&
		any("health", func(v string) bool {
			h := "none"
			if st.Health != nil {
				h = st.Health.Status
			}
			return h == v
		}) &&
		any("ancestor", func(v string) bool {
			for _, a := range ancestors {
				if c.ImageID == a || strings.HasPrefix(strings.TrimPrefix(c.ImageID, "sha256:"), strings.TrimPrefix(a, "sha256:")) {
					return true
				}
			}
			return c.ImageRef == v
		}) &&
		labelsMatch(f["label"], s.Labels)
}

// matchName is dockerd's name filter: a regular expression searched in
// the name, with or without Docker's leading slash ("^web$" and "/web"
// both find web). A pattern that does not compile matches nothing, as in
// dockerd.
func matchName(pattern, name string) bool {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return false
	}
	return re.MatchString(name) || re.MatchString("/"+name)
}

// stateName is the Docker state word for st.
func stateName(st ContainerState) container.ContainerState {
	switch {
	case st.Status == "running" && st.Paused:
		return container.StatePaused
	case st.Status == "running":
		return container.StateRunning
	case st.Status == "restarting":
		return container.StateRestarting
	case st.Status == "exited":
		return container.StateExited
	}
	return container.StateCreated
}

// statusString is Docker's human status ("Up 3 minutes (healthy)").
func statusString(st ContainerState) string {
	switch stateName(st) {
	case container.StatePaused:
		return "Up " + units.HumanDuration(time.Since(st.StartedAt)) + " (Paused)"
	case container.StateRunning:
		s := "Up " + units.HumanDuration(time.Since(st.StartedAt))
		if st.Health != nil && st.Health.Status != "" {
			if st.Health.Status == "starting" {
				s += " (health: starting)"
			} else {
				s += " (" + st.Health.Status + ")"
			}
		}
		return s
	case container.StateRestarting:
		return fmt.Sprintf("Restarting (%d) %s ago", st.ExitCode, units.HumanDuration(time.Since(st.FinishedAt)))
	case container.StateExited:
		if st.FinishedAt.IsZero() {
			return fmt.Sprintf("Exited (%d)", st.ExitCode)
		}
		return fmt.Sprintf("Exited (%d) %s ago", st.ExitCode, units.HumanDuration(time.Since(st.FinishedAt)))
	}
	return "Created"
}

func (e *Engine) summary(ctx context.Context, c *Container, st ContainerState, size bool) container.Summary {
	s := container.Summary{
		ID:      c.ID,
		Names:   []string{"/" + c.Name},
		Image:   c.ImageRef,
		ImageID: c.ImageID,
		Command: strings.Join(append(append([]string{}, c.Config.Entrypoint...), c.Config.Cmd...), " "),
		Created: c.Created.Unix(),
		Labels:  c.Config.Labels,
		State:   stateName(st),
		Status:  statusString(st),
		Ports:   []container.PortSummary{},
		Mounts:  mountPoints(c),
	}
	s.HostConfig.NetworkMode = string(c.HostConfig.NetworkMode)
	if s.HostConfig.NetworkMode == "" {
		s.HostConfig.NetworkMode = "none"
	}
	// Every network the container is on (ps's Networks column joins the
	// keys), with inspect's endpoint settings, as dockerd's summary has.
	s.NetworkSettings = &container.NetworkSettingsSummary{Networks: e.networkSettings(c).Networks}
	if st.Health != nil {
		s.Health = &container.HealthSummary{Status: container.HealthStatus(st.Health.Status), FailingStreak: st.Health.FailingStreak}
	}
	if size {
		if n, err := e.snaps.Usage(ctx, c.Snapshot); err == nil {
			s.SizeRw = n
		}
	}
	return s
}

// mountPoints describes the container's mounts as Docker reports them.
func mountPoints(c *Container) []container.MountPoint {
	out := []container.MountPoint{}
	for _, m := range c.HostConfig.Mounts {
		out = append(out, container.MountPoint{Type: m.Type, Source: m.Source, Destination: m.Target, RW: !m.ReadOnly})
	}
	for _, b := range c.HostConfig.Binds {
		parts := strings.Split(b, ":")
		if len(parts) < 2 {
			continue
		}
		mp := container.MountPoint{Type: "bind", Source: parts[0], Destination: parts[1], RW: true}
		if len(parts) > 2 {
			mp.Mode = parts[2]
			mp.RW = !strings.Contains(parts[2], "ro")
		}
		if !strings.HasPrefix(parts[0], "/") {
			mp.Type, mp.Name = "volume", parts[0]
		}
		out = append(out, mp)
	}
	return out
}
