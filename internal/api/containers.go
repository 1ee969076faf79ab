package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/engine"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/moby/moby/api/types/container"
	nettypes "github.com/moby/moby/api/types/network"
)

func (s *Server) containerRoutes() {
	m := s.mux
	m.Handle("GET /containers/json", handler(s.containerList))
	m.Handle("POST /containers/create", completes(s.containerCreate))
	m.Handle("POST /containers/prune", completes(s.containerPrune))
	m.Handle("GET /containers/{id}/json", handler(s.containerInspect))
	m.Handle("POST /containers/{id}/start", completes(s.containerStart))
	m.Handle("POST /containers/{id}/stop", completes(s.containerStop))
	m.Handle("POST /containers/{id}/restart", completes(s.containerRestart))
	m.Handle("POST /containers/{id}/kill", completes(s.containerKill))
	m.Handle("POST /containers/{id}/wait", handler(s.containerWait))
	m.Handle("DELETE /containers/{id}", completes(s.containerRemove))
	m.Handle("POST /containers/{id}/pause", completes(s.simple(s.e.Pause)))
	m.Handle("POST /containers/{id}/unpause", completes(s.simple(s.e.Unpause)))
	m.Handle("POST /containers/{id}/rename", completes(s.containerRename))
	m.Handle("POST /containers/{id}/update", completes(s.containerUpdate))
	m.Handle("GET /containers/{id}/top", handler(s.containerTop))
	m.Handle("GET /containers/{id}/stats", handler(s.containerStats))
	m.Handle("GET /containers/{id}/changes", handler(s.containerChanges))
	m.Handle("GET /containers/{id}/export", handler(s.containerExport))
	m.Handle("HEAD /containers/{id}/archive", handler(s.archiveStat))
	m.Handle("GET /containers/{id}/archive", handler(s.archiveGet))
	m.Handle("PUT /containers/{id}/archive", completes(s.archivePut))
	m.Handle("POST /commit", completes(s.commit))
}

func (s *Server) containerList(w http.ResponseWriter, r *http.Request) error {
	f, err := filtersValue(r)
	if err != nil {
		return err
	}
	limit, err := intValue(r, "limit", 0)
	if err != nil {
		return err
	}
	if limit < 0 {
		limit = 0
	}
	list, err := s.e.List(r.Context(), engine.ListOptions{All: boolValue(r, "all"), Size: boolValue(r, "size"), Limit: limit, Filters: f})
	if err != nil {
		return err
	}
	if list == nil {
		list = []container.Summary{}
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

// createBody is the create request with the field that API versions
// before 1.44 used for --mac-address (Config.MacAddress, gone from the
// current types; the Config fields are the body's top level).
type createBody struct {
	container.CreateRequest
	MacAddress string `json:",omitempty"`
}

func (s *Server) containerCreate(w http.ResponseWriter, r *http.Request) error {
	var req createBody
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	if req.Config == nil {
		return fmt.Errorf("config cannot be empty in order to create a container: %w", errdefs.ErrInvalidArgument)
	}
	o := engine.CreateOptions{Name: r.URL.Query().Get("name"), Config: *req.Config, NetworkingConfig: req.NetworkingConfig}
	if req.HostConfig != nil {
		o.HostConfig = *req.HostConfig
	}
	warnings, err := createCompat(requestVersion(r), &o, req.MacAddress)
	if err != nil {
		return err
	}
	c, err := s.e.Create(r.Context(), o)
	if err != nil {
		return err
	}
	if warnings == nil {
		warnings = []string{}
	}
	writeJSON(w, http.StatusCreated, container.CreateResponse{ID: c.ID, Warnings: warnings})
	return nil
}

// legacyMAC moves an old client's Config.MacAddress to the endpoint of the
// container's network mode, as dockerd does for API versions before 1.44
// (the docker CLI sends --mac-address there when it negotiates those).
func legacyMAC(o *engine.CreateOptions, mac string) error {
	if mac == "" {
		return nil
	}
	var hw nettypes.HardwareAddr
	if err := hw.UnmarshalText([]byte(mac)); err != nil {
		return fmt.Errorf("invalid MAC address %s: %w", mac, errdefs.ErrInvalidArgument)
	}
	key := string(o.HostConfig.NetworkMode)
	if key == "" {
		key = "default"
	}
	if o.NetworkingConfig == nil {
		o.NetworkingConfig = &nettypes.NetworkingConfig{}
	}
	if o.NetworkingConfig.EndpointsConfig == nil {
		o.NetworkingConfig.EndpointsConfig = map[string]*nettypes.EndpointSettings{}
	}
	ep := o.NetworkingConfig.EndpointsConfig[key]
	if ep == nil {
		ep = &nettypes.EndpointSettings{}
		o.NetworkingConfig.EndpointsConfig[key] = ep
	}
	if len(ep.MacAddress) > 0 && ep.MacAddress.String() != hw.String() {
		return fmt.Errorf("the container's MAC address %s and its endpoint's %s differ: %w", mac, ep.MacAddress, errdefs.ErrInvalidArgument)
	}
	ep.MacAddress = hw
	return nil
}

func (s *Server) containerInspect(w http.ResponseWriter, r *http.Request) error {
	resp, err := s.e.ContainerInspect(r.Context(), r.PathValue("id"), boolValue(r, "size"))
	if err != nil {
		return err
	}
	inspectCompat(requestVersion(r), &resp)
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// status is the container's State.Status ("" when it cannot be read).
func (s *Server) status(r *http.Request, id string) (string, error) {
	resp, err := s.e.ContainerInspect(r.Context(), id, false)
	if err != nil {
		return "", err
	}
	if resp.State == nil {
		return "", nil
	}
	return string(resp.State.Status), nil
}

func (s *Server) containerStart(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	st, err := s.status(r, id)
	if err != nil {
		return err
	}
	if st == "running" {
		return errNotModified
	}
	info, err := s.e.ContainerInspect(r.Context(), id, false)
	if err != nil {
		return err
	}
	ok, err := s.triggerRun(r.Context(), info.ID)
	if !ok {
		err = s.e.Start(r.Context(), id)
	}
	if err != nil {
		if info.HostConfig != nil && info.HostConfig.AutoRemove {
			// dockerd removes an AutoRemove container whose start failed.
			_ = s.e.Remove(context.WithoutCancel(r.Context()), info.ID, engine.RemoveOptions{Force: true, Volumes: true})
		}
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func stopOptions(r *http.Request) (engine.StopOptions, error) {
	o := engine.StopOptions{Signal: r.URL.Query().Get("signal")}
	if r.URL.Query().Has("t") {
		t, err := intValue(r, "t", 0)
		if err != nil {
			return o, err
		}
		o.Timeout = &t
	}
	return o, nil
}

func (s *Server) containerStop(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	o, err := stopOptions(r)
	if err != nil {
		return err
	}
	st, err := s.status(r, id)
	if err != nil {
		return err
	}
	if st != "running" && st != "paused" && st != "restarting" {
		return errNotModified
	}
	if err := s.e.Stop(r.Context(), id, o); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) containerRestart(w http.ResponseWriter, r *http.Request) error {
	o, err := stopOptions(r)
	if err != nil {
		return err
	}
	if err := s.e.Restart(r.Context(), r.PathValue("id"), o); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) containerKill(w http.ResponseWriter, r *http.Request) error {
	sig := r.URL.Query().Get("signal")
	if sig == "" {
		sig = "KILL"
	}
	if err := s.e.Kill(r.Context(), r.PathValue("id"), sig); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// containerWait answers once the container is not running. Docker sends the
// 200 header at once and the body at exit, so clients learn early that the
// wait is in place; we do the same.
func (s *Server) containerWait(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	info, err := s.e.ContainerInspect(r.Context(), id, false)
	if err != nil {
		// An attached run with --rm has removed its container by now:
		// its exit code is still here.
		if code, werr, ok := s.waitRun(r.Context(), id); ok {
			resp := container.WaitResponse{StatusCode: int64(code)}
			if werr != nil {
				resp.Error = &container.WaitExitError{Message: Message(werr)}
			}
			writeJSON(w, http.StatusOK, resp)
			return nil
		}
		return err
	}
	cond := container.WaitCondition(r.URL.Query().Get("condition"))
	switch cond {
	case "", container.WaitConditionNotRunning, container.WaitConditionNextExit, container.WaitConditionRemoved:
	default:
		return fmt.Errorf("invalid condition %q: %w", cond, errdefs.ErrInvalidArgument)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	if fl, ok := w.(http.Flusher); ok {
		fl.Flush()
	}
	// docker run waits for the next exit before it starts the container.
	if cond == container.WaitConditionNextExit || cond == container.WaitConditionRemoved {
		if info.State != nil && info.State.Status == container.StateCreated && s.lookupRun(info.ID) == nil {
			if err := s.waitStarted(r.Context(), id); err != nil {
				return nil
			}
		}
	}
	resp := container.WaitResponse{}
	code, err, attached := s.waitRun(r.Context(), info.ID)
	if !attached {
		code, err = s.e.Wait(r.Context(), id)
	}
	if err != nil {
		resp.Error = &container.WaitExitError{Message: Message(err)}
	}
	resp.StatusCode = int64(code)
	if !attached && err == nil && cond == container.WaitConditionRemoved && info.HostConfig != nil && info.HostConfig.AutoRemove {
		// --rm: the API removes an exited AutoRemove container, as
		// dockerd does (the berth CLI removes it itself).
		if err := s.e.Remove(context.WithoutCancel(r.Context()), id, engine.RemoveOptions{Force: true}); err != nil && !errdefs.IsNotFound(err) {
			resp.Error = &container.WaitExitError{Message: Message(err)}
		}
	}
	return json.NewEncoder(w).Encode(resp)
}

func (s *Server) containerRemove(w http.ResponseWriter, r *http.Request) error {
	if err := s.e.Remove(r.Context(), r.PathValue("id"), engine.RemoveOptions{Force: boolValue(r, "force"), Volumes: boolValue(r, "v")}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// simple serves POST /containers/{id}/verb for an engine call taking only
// the container.
func (s *Server) simple(fn func(ctx context.Context, ref string) error) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := fn(r.Context(), r.PathValue("id")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

func (s *Server) containerRename(w http.ResponseWriter, r *http.Request) error {
	if err := s.e.Rename(r.Context(), r.PathValue("id"), r.URL.Query().Get("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) containerUpdate(w http.ResponseWriter, r *http.Request) error {
	var u container.UpdateConfig
	if err := decodeBody(r, &u); err != nil {
		return err
	}
	var rp *container.RestartPolicy
	if u.RestartPolicy.Name != "" {
		rp = &u.RestartPolicy
	}
	if err := s.e.Update(r.Context(), r.PathValue("id"), u.Resources, rp); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, container.UpdateResponse{Warnings: []string{}})
	return nil
}

func (s *Server) containerTop(w http.ResponseWriter, r *http.Request) error {
	var args []string
	if a := r.URL.Query().Get("ps_args"); a != "" {
		args = strings.Fields(a)
	}
	resp, err := s.e.Top(r.Context(), r.PathValue("id"), args)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// containerStats sends Docker's stats JSON: one sample with stream=false,
// else one a second (each carrying the previous as precpu_stats).
func (s *Server) containerStats(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	stream := !r.URL.Query().Has("stream") || boolValue(r, "stream")
	prev, err := s.e.ContainerStats(r.Context(), id)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	fl, _ := w.(http.Flusher)
	cur := prev
	for {
		if err := enc.Encode(StatsResponse(cur, prev)); err != nil || !stream {
			return nil
		}
		if fl != nil {
			fl.Flush()
		}
		select {
		case <-r.Context().Done():
			return nil
		case <-time.After(time.Second):
		}
		prev = cur
		if cur, err = s.e.ContainerStats(r.Context(), id); err != nil {
			return nil
		}
	}
}

// StatsResponse renders engine samples in Docker's stats shape.
func StatsResponse(cur, prev engine.Stats) container.StatsResponse {
	cpu := func(st engine.Stats) container.CPUStats {
		return container.CPUStats{CPUUsage: container.CPUUsage{TotalUsage: st.CPUNanos}, SystemUsage: uint64(st.Read.UnixNano()) * uint64(max(st.OnlineCPUs, 1)), OnlineCPUs: uint32(st.OnlineCPUs)}
	}
	return container.StatsResponse{
		ID: cur.ID, Name: "/" + cur.Name, OSType: "linux", Read: cur.Read, PreRead: prev.Read,
		CPUStats: cpu(cur), PreCPUStats: cpu(prev),
		MemoryStats: container.MemoryStats{Usage: cur.MemUsage, Limit: cur.MemLimit, Stats: map[string]uint64{"inactive_file": cur.MemCache}},
		PidsStats:   container.PidsStats{Current: cur.Pids},
		BlkioStats: container.BlkioStats{IoServiceBytesRecursive: []container.BlkioStatEntry{
			{Op: "read", Value: cur.BlkRead}, {Op: "write", Value: cur.BlkWrite}}},
	}
}

func (s *Server) containerChanges(w http.ResponseWriter, r *http.Request) error {
	ch, err := s.e.Diff(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if ch == nil {
		ch = []container.FilesystemChange{}
	}
	writeJSON(w, http.StatusOK, ch)
	return nil
}

func (s *Server) containerExport(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.status(r, r.PathValue("id")); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/x-tar")
	return s.e.Export(r.Context(), r.PathValue("id"), w)
}

func statHeader(st container.PathStat) (string, error) {
	b, err := json.Marshal(st)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

func (s *Server) archiveStat(w http.ResponseWriter, r *http.Request) error {
	st, err := s.e.StatPath(r.Context(), r.PathValue("id"), r.URL.Query().Get("path"))
	if err != nil {
		return err
	}
	h, err := statHeader(st)
	if err != nil {
		return err
	}
	w.Header().Set("X-Docker-Container-Path-Stat", h)
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) archiveGet(w http.ResponseWriter, r *http.Request) error {
	id, p := r.PathValue("id"), r.URL.Query().Get("path")
	st, err := s.e.StatPath(r.Context(), id, p)
	if err != nil {
		return err
	}
	h, err := statHeader(st)
	if err != nil {
		return err
	}
	w.Header().Set("X-Docker-Container-Path-Stat", h)
	w.Header().Set("Content-Type", "application/x-tar")
	return s.e.CopyFrom(r.Context(), id, p, w)
}

func (s *Server) archivePut(w http.ResponseWriter, r *http.Request) error {
	if err := s.e.CopyTo(r.Context(), r.PathValue("id"), r.URL.Query().Get("path"), r.Body); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) containerPrune(w http.ResponseWriter, r *http.Request) error {
	f, err := filtersValue(r)
	if err != nil {
		return err
	}
	rep, err := s.e.PruneContainers(r.Context(), f)
	if err != nil {
		return err
	}
	if rep.ContainersDeleted == nil {
		rep.ContainersDeleted = []string{}
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}

func (s *Server) commit(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	o := engine.CommitOptions{Comment: q.Get("comment"), Author: q.Get("author"), Pause: !q.Has("pause") || boolValue(r, "pause"), Changes: q["changes"]}
	if repo := q.Get("repo"); repo != "" {
		o.Reference = repo
		if tag := q.Get("tag"); tag != "" {
			o.Reference += ":" + tag
		}
	}
	var cfg container.Config
	if r.ContentLength != 0 {
		if err := decodeBody(r, &cfg); err != nil {
			return err
		}
		if cfg.Image != "" || len(cfg.Cmd) > 0 || len(cfg.Entrypoint) > 0 || len(cfg.Env) > 0 || cfg.User != "" || cfg.WorkingDir != "" || len(cfg.Labels) > 0 || len(cfg.ExposedPorts) > 0 || len(cfg.Volumes) > 0 {
			o.Config = &cfg
		}
	}
	id, err := s.e.Commit(r.Context(), q.Get("container"), o)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, container.CommitResponse{ID: id})
	return nil
}
