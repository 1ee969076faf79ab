package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/berth-dev/berth/internal/build"
	"github.com/berth-dev/berth/internal/errdefs"
	buildtypes "github.com/moby/moby/api/types/build"
)

func (s *Server) buildRoutes() {
	s.mux.Handle("POST /build", handler(s.build))
	s.mux.Handle("POST /build/prune", handler(s.buildPrune))
}

// build serves Docker's classic POST /build: the context as a (possibly
// compressed) tar in the body, the options as query parameters, and the
// build's output as JSON progress messages: {"stream": …} lines, then
// {"aux": {"ID": …}} and Docker's "Successfully built/tagged" lines.
func (s *Server) build(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	opts := build.Options{
		ContextTar: r.Body, Dockerfile: q.Get("dockerfile"), Tags: q["t"], Target: q.Get("target"),
		NoCache: boolValue(r, "nocache"), Pull: boolValue(r, "pull"), Platform: q.Get("platform"),
	}
	if v := q.Get("remote"); v != "" {
		return fmt.Errorf("build from remote %q: %w", v, errdefs.ErrNotSupported)
	}
	if v := q.Get("buildargs"); v != "" {
		// Docker sends null for an argument to take from the environment
		// of the client, which has already resolved it or left it out.
		var args map[string]*string
		if err := json.Unmarshal([]byte(v), &args); err != nil {
			return fmt.Errorf("invalid buildargs %q: %w", v, errdefs.ErrInvalidArgument)
		}
		opts.BuildArgs = map[string]string{}
		for k, v := range args {
			if v != nil {
				opts.BuildArgs[k] = *v
			}
		}
	}
	if v := q.Get("labels"); v != "" {
		if err := json.Unmarshal([]byte(v), &opts.Labels); err != nil {
			return fmt.Errorf("invalid labels %q: %w", v, errdefs.ErrInvalidArgument)
		}
	}
	if v := q.Get("version"); v == "2" {
		return fmt.Errorf("BuildKit sessions (version=2): %w", errdefs.ErrNotSupported)
	}
	ps := newProgressStream(w)
	if !boolValue(r, "q") {
		opts.Progress = streamWriter{ps}
	}
	res, err := s.e.BuildWithAuth(r.Context(), opts, buildAuth(r))
	if err != nil {
		ps.fail(err)
		return nil
	}
	ps.aux(buildtypes.Result{ID: res.ID})
	if !boolValue(r, "q") {
		ps.stream("Successfully built " + shortID(res.ID) + "\n")
		for _, t := range opts.Tags {
			ps.stream("Successfully tagged " + t + "\n")
		}
	}
	return nil
}

// shortID is Docker's 12-hex form of an image ID.
func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		id = id[:12]
	}
	return id
}

// streamWriter turns the builder's human progress into {"stream": …}
// messages, one per write.
type streamWriter struct{ ps *progressStream }

func (sw streamWriter) Write(b []byte) (int, error) {
	sw.ps.stream(string(b))
	return len(b), nil
}

func (s *Server) buildPrune(w http.ResponseWriter, r *http.Request) error {
	f, err := filtersValue(r)
	if err != nil {
		return err
	}
	n, err := s.e.BuilderPrune(r.Context(), f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, buildtypes.CachePruneReport{SpaceReclaimed: uint64(n)})
	return nil
}
