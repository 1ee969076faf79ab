package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/engine"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/system"
	"golang.org/x/sys/unix"
)

// StateLabel carries the engine's state directory in /info's Labels (Docker
// has no field for it); internal/client reads it back for `berth info`.
const StateLabel = "io.berth.state-dir="

func (s *Server) routes() {
	m := s.mux
	m.Handle("GET /_ping", handler(s.ping))
	m.Handle("HEAD /_ping", handler(s.ping))
	m.Handle("GET /version", handler(s.version))
	m.Handle("GET /info", handler(s.info))
	m.Handle("GET /events", handler(s.events))
	m.Handle("POST /auth", handler(s.auth))
	m.Handle("GET /system/df", handler(s.diskUsage))
	s.containerRoutes()
	s.streamRoutes()
	s.imageRoutes()
	s.volumeRoutes()
	s.networkRoutes()
	s.buildRoutes()
}

func engineVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

func (s *Server) ping(w http.ResponseWriter, r *http.Request) error {
	h := w.Header()
	h.Set("Cache-Control", "no-cache, no-store, must-revalidate")
	h.Set("Pragma", "no-cache")
	h.Set("Docker-Experimental", "false")
	h.Set("Ostype", runtime.GOOS)
	h.Set("Builder-Version", "1")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write([]byte("OK"))
	}
	return nil
}

func kernelVersion() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}

func (s *Server) version(w http.ResponseWriter, r *http.Request) error {
	v := system.VersionResponse{
		Platform:      system.PlatformInfo{Name: "berth"},
		Version:       engineVersion(),
		APIVersion:    APIVersion,
		MinAPIVersion: MinAPIVersion,
		Os:            runtime.GOOS,
		Arch:          runtime.GOARCH,
		GoVersion:     runtime.Version(),
		KernelVersion: kernelVersion(),
	}
	v.Components = []system.ComponentVersion{{Name: "Engine", Version: v.Version, Details: map[string]string{
		"ApiVersion": APIVersion, "MinAPIVersion": MinAPIVersion, "Os": v.Os, "Arch": v.Arch, "GoVersion": v.GoVersion, "KernelVersion": v.KernelVersion,
	}}}
	writeJSON(w, http.StatusOK, v)
	return nil
}

func osName() string {
	b, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return runtime.GOOS
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return runtime.GOOS
}

func (s *Server) info(w http.ResponseWriter, r *http.Request) error {
	list, err := s.e.List(r.Context(), engine.ListOptions{All: true})
	if err != nil {
		return err
	}
	imgs, err := s.e.Images(r.Context())
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	in := system.Info{
		ID: "berth", Containers: len(list), Images: len(imgs),
		Driver: s.e.Driver(), DockerRootDir: s.e.Root(), Labels: []string{StateLabel + s.e.State()},
		OperatingSystem: osName(), OSType: runtime.GOOS, Architecture: runtime.GOARCH, NCPU: runtime.NumCPU(),
		KernelVersion: kernelVersion(), ServerVersion: engineVersion(), LoggingDriver: "json-file",
		CgroupDriver: "cgroupfs", CgroupVersion: "2", Name: host, SystemTime: time.Now().Format(time.RFC3339Nano),
		IndexServerAddress: "https://index.docker.io/v1/", MemoryLimit: true, SwapLimit: true, CPUShares: true, CPUSet: true, PidsLimit: true,
	}
	for _, c := range list {
		switch c.State {
		case container.StateRunning:
			in.ContainersRunning++
		case container.StatePaused:
			in.ContainersPaused++
		default:
			in.ContainersStopped++
		}
	}
	in.MemTotal = memTotal()
	in.Runtimes = map[string]system.RuntimeWithStatus{}
	runtimes, def := s.e.Runtimes()
	in.DefaultRuntime = def
	for name, path := range runtimes {
		in.Runtimes[name] = system.RuntimeWithStatus{Runtime: system.Runtime{Path: path}}
	}
	writeJSON(w, http.StatusOK, in)
	return nil
}

// events streams Docker's event messages, one JSON object each, until the
// client goes away (or until= passes, or at the end without since/until
// when the client asked for a bounded range).
func (s *Server) events(w http.ResponseWriter, r *http.Request) error {
	var opts engine.EventsOptions
	q := r.URL.Query()
	var err error
	if opts.Since, err = parseTime(q.Get("since")); err != nil {
		return err
	}
	if opts.Until, err = parseTime(q.Get("until")); err != nil {
		return err
	}
	filters, err := filtersValue(r)
	if err != nil {
		return err
	}
	opts.Filter = eventFilter(filters)
	// Docker streams until the client disconnects unless until is set.
	opts.Follow = opts.Until.IsZero() || opts.Until.After(time.Now())
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	if fl != nil {
		fl.Flush()
	}
	enc := json.NewEncoder(w)
	err = s.e.Events(r.Context(), opts, func(m events.Message) error {
		if err := enc.Encode(m); err != nil {
			return err
		}
		if fl != nil {
			fl.Flush()
		}
		return nil
	})
	if err != nil && r.Context().Err() == nil {
		_ = enc.Encode(map[string]string{"error": Message(err)})
	}
	return nil
}

// eventFilter applies Docker's event filters: type, event/action,
// container/image/volume (by ID or name), label.
func eventFilter(f map[string][]string) func(events.Message) bool {
	if len(f) == 0 {
		return nil
	}
	return func(m events.Message) bool {
		match := func(key string, values ...string) bool {
			want, ok := f[key]
			if !ok {
				return true
			}
			for _, w := range want {
				for _, v := range values {
					if v != "" && (v == w || strings.HasPrefix(v, w) && key != "type" && key != "event") {
						return true
					}
				}
			}
			return false
		}
		attrs := m.Actor.Attributes
		if !match("type", string(m.Type)) || !match("event", string(m.Action)) {
			return false
		}
		if _, ok := f["container"]; ok && (m.Type != events.ContainerEventType || !match("container", m.Actor.ID, attrs["name"])) {
			return false
		}
		if _, ok := f["image"]; ok && !match("image", m.Actor.ID, attrs["image"], attrs["name"]) {
			return false
		}
		if _, ok := f["volume"]; ok && (m.Type != events.VolumeEventType || !match("volume", m.Actor.ID)) {
			return false
		}
		for _, l := range f["label"] {
			k, v, hasV := strings.Cut(l, "=")
			got, ok := attrs[k]
			if !ok || hasV && got != v {
				return false
			}
		}
		return true
	}
}

// parseTime reads Docker's time parameters: Unix seconds (with an optional
// fraction) or RFC 3339.
func parseTime(v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	var sec, nsec int64
	if n, err := fmt.Sscanf(v, "%d.%d", &sec, &nsec); err == nil && n == 2 {
		return time.Unix(sec, nsec), nil
	}
	if n, err := fmt.Sscanf(v, "%d", &sec); err == nil && n == 1 && !strings.ContainsAny(v, "-:T") {
		return time.Unix(sec, 0), nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("invalid time %q: %w", v, errdefs.ErrInvalidArgument)
	}
	return t, nil
}

func (s *Server) diskUsage(w http.ResponseWriter, r *http.Request) error {
	du, err := s.e.DiskUsage(r.Context())
	if err != nil {
		return err
	}
	cu := &container.DiskUsage{TotalCount: int64(len(du.Containers)), TotalSize: du.ContainersSize}
	for _, c := range du.Containers {
		cu.Items = append(cu.Items, container.Summary{ID: c.ID, Names: []string{"/" + c.Name}, Image: c.ImageRef, ImageID: c.ImageID, Created: c.Created.Unix()})
	}
	img := du.Images
	writeJSON(w, http.StatusOK, system.DiskUsage{ImageUsage: &img, ContainerUsage: cu})
	return nil
}
