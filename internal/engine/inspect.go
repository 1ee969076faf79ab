package engine

import (
	"context"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/storage"
)

// ContainerInspect is `docker inspect` for a container (Docker's JSON).
func (e *Engine) ContainerInspect(ctx context.Context, ref string, size bool) (container.InspectResponse, error) {
	c, err := e.lookupContainer(ref)
	if err != nil {
		return container.InspectResponse{}, err
	}
	st := e.state(c)
	args := append(append([]string{}, c.Config.Entrypoint...), c.Config.Cmd...)
	ts := func(t time.Time) string {
		if t.IsZero() {
			return "0001-01-01T00:00:00Z"
		}
		return t.UTC().Format(time.RFC3339Nano)
	}
	state := &container.State{
		Status:     stateName(st),
		Running:    st.Status == "running",
		Paused:     st.Paused,
		Restarting: st.Status == "restarting",
		OOMKilled:  st.OOMKilled,
		Pid:        st.Pid,
		ExitCode:   st.ExitCode,
		Error:      st.Error,
		StartedAt:  ts(st.StartedAt),
		FinishedAt: ts(st.FinishedAt),
	}
	if h := st.Health; h != nil {
		state.Health = &container.Health{Status: container.HealthStatus(h.Status), FailingStreak: h.FailingStreak}
		for _, r := range h.Log {
			state.Health.Log = append(state.Health.Log, &container.HealthcheckResult{Start: r.Start, End: r.End, ExitCode: r.ExitCode, Output: r.Output})
		}
	}
	cfg := c.Config
	hc := c.HostConfig
	if hc.Runtime == "" {
		// A record from before containers recorded their runtime: it
		// runs with the default.
		hc.Runtime = DefaultRuntimeName
	}
	resp := container.InspectResponse{
		ID:              c.ID,
		Created:         ts(c.Created),
		State:           state,
		Image:           c.ImageID,
		LogPath:         e.logPath(c.ID),
		Name:            "/" + c.Name,
		RestartCount:    st.RestartCount,
		Driver:          c.Driver,
		Platform:        "linux",
		HostConfig:      &hc,
		Config:          &cfg,
		Mounts:          mountPoints(c),
		GraphDriver:     &storage.DriverData{Name: c.Driver, Data: map[string]string{}},
		NetworkSettings: e.networkSettings(c),
	}
	if len(args) > 0 {
		resp.Path, resp.Args = args[0], args[1:]
	}
	if resp.Args == nil {
		resp.Args = []string{}
	}
	if up, err := e.snaps.UpperDir(ctx, c.Snapshot); err == nil {
		resp.GraphDriver.Data["UpperDir"] = up
		resp.GraphDriver.Data["MergedDir"] = e.rootfsDir(c.ID)
	}
	if size {
		if n, err := e.snaps.Usage(ctx, c.Snapshot); err == nil {
			resp.SizeRw = &n
		}
	}
	return resp, nil
}
