// Package api serves the engine over the Docker Engine API: Docker's paths
// (/v1.xx/… or unversioned), JSON bodies with the maintained types of
// github.com/moby/moby/api, JSON progress streams for pulls and loads,
// hijacked connections with stdcopy framing for attach and exec, and
// errors as {"message": …} with the status errdefs maps to. Every handler
// parses, calls the in-process engine and renders: behaviour lives in the
// engine, once, and internal/client is the matching HTTP client.
//
// Registry credentials come with the requests that need them, as with
// dockerd (registryauth.go): X-Registry-Auth on pulls and pushes,
// X-Registry-Config on builds. berthd keeps none of them; POST /auth only
// verifies credentials for the client, which stores them.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/berth-dev/berth/internal/engine"
	"github.com/berth-dev/berth/internal/enginetypes"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/moby/moby/api/types/common"
)

// APIVersion is the Docker Engine API version berth speaks; MinAPIVersion
// the oldest it accepts (Docker's own floor, which lets Debian 12's docker.io
// 20.10 CLI, API 1.41, negotiate down).
const (
	APIVersion    = "1.44"
	MinAPIVersion = "1.24"
)

// Server answers Docker Engine API requests with one engine.
type Server struct {
	e   *engine.Engine
	mux *http.ServeMux

	mu    sync.Mutex
	execs map[string]*execConfig  // exec instances created and not yet reaped
	runs  map[string]*attachedRun // attach-then-start runs by container ID
}

// New returns the API handler for e.
func New(e *engine.Engine) *Server {
	s := &Server{e: e, mux: http.NewServeMux(), execs: map[string]*execConfig{}, runs: map[string]*attachedRun{}}
	s.routes()
	return s
}

var versionPrefix = regexp.MustCompile(`^/v([0-9]+\.[0-9]+)(/|$)`)

// ServeHTTP strips Docker's optional /v1.xx prefix (rejecting versions
// outside what we speak, as dockerd does) and dispatches.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Api-Version", APIVersion)
	w.Header().Set("Server", "berth/"+engineVersion()+" (linux)")
	if m := versionPrefix.FindStringSubmatch(r.URL.Path); m != nil {
		if enginetypes.VersionLess(m[1], MinAPIVersion) {
			writeError(w, fmt.Errorf("client version %s is too old. Minimum supported API version is %s, please upgrade your client to a newer version: %w", m[1], MinAPIVersion, errdefs.ErrInvalidArgument))
			return
		}
		if enginetypes.VersionLess(APIVersion, m[1]) {
			writeError(w, fmt.Errorf("client version %s is too new. Maximum supported API version is %s: %w", m[1], APIVersion, errdefs.ErrInvalidArgument))
			return
		}
		r.URL.Path = r.URL.Path[len(m[0])-len(m[2]):]
		if r.URL.Path == "" {
			r.URL.Path = "/"
		}
		r.URL.RawPath = ""
		r = withAPIVersion(r, m[1])
	}
	s.mux.ServeHTTP(w, r)
}

// errNotModified is Docker's 304 (start of a running container, stop of a
// stopped one).
var errNotModified = errors.New("not modified")

// StatusCode maps an error to the HTTP status dockerd would send.
func StatusCode(err error) int {
	var ee *engine.ExitError
	switch {
	case errors.Is(err, errNotModified):
		return http.StatusNotModified
	case errdefs.IsNotFound(err):
		return http.StatusNotFound
	case errdefs.IsAlreadyExists(err), errdefs.IsConflict(err), errdefs.IsNotRunning(err):
		return http.StatusConflict
	case errdefs.IsInvalidArgument(err):
		return http.StatusBadRequest
	case errors.Is(err, errdefs.ErrPermission):
		return http.StatusForbidden
	case errors.Is(err, errdefs.ErrNotSupported):
		return http.StatusNotImplemented
	case errors.Is(err, errdefs.ErrUnavailable):
		return http.StatusServiceUnavailable
	case errors.As(err, &ee) && (ee.Code == 126 || ee.Code == 127):
		// dockerd reports a workload that cannot be executed as a bad
		// request; the CLI derives 126/127 from the message.
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

// Message is the error text for people: errdefs categories travel in the
// status code, not in the words (as the CLI prints local errors).
func Message(err error) string {
	msg := err.Error()
	for _, cat := range []error{errdefs.ErrNotFound, errdefs.ErrAlreadyExists, errdefs.ErrInvalidArgument,
		errdefs.ErrConflict, errdefs.ErrNotRunning, errdefs.ErrPermission, errdefs.ErrUnavailable, errdefs.ErrNotSupported} {
		if errors.Is(err, cat) {
			msg = strings.TrimSuffix(msg, ": "+cat.Error())
		}
	}
	return msg
}

func writeError(w http.ResponseWriter, err error) {
	code := StatusCode(err)
	if code == http.StatusNotModified {
		w.WriteHeader(code)
		return
	}
	writeJSON(w, code, common.ErrorResponse{Message: Message(err)})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// decodeBody reads a JSON request body; an empty body leaves v untouched.
func decodeBody(r *http.Request, v any) error {
	if r.Body == nil {
		return nil
	}
	err := json.NewDecoder(r.Body).Decode(v)
	if err == nil || errors.Is(err, io.EOF) {
		return nil
	}
	return fmt.Errorf("invalid JSON body: %v: %w", err, errdefs.ErrInvalidArgument)
}

func boolValue(r *http.Request, k string) bool {
	v := strings.ToLower(r.URL.Query().Get(k))
	return v != "" && v != "0" && v != "false" && v != "no"
}

func intValue(r *http.Request, k string, def int) (int, error) {
	v := r.URL.Query().Get(k)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("invalid %s %q: %w", k, v, errdefs.ErrInvalidArgument)
	}
	return n, nil
}

// filtersValue decodes Docker's filters parameter: {"key":{"value":true}}
// (current) or {"key":["value"]} (old clients).
func filtersValue(r *http.Request) (map[string][]string, error) {
	raw := r.URL.Query().Get("filters")
	if raw == "" {
		return nil, nil
	}
	var byMap map[string]map[string]bool
	if err := json.Unmarshal([]byte(raw), &byMap); err == nil {
		out := map[string][]string{}
		for k, vs := range byMap {
			for v, on := range vs {
				if on {
					out[k] = append(out[k], v)
				}
			}
		}
		return out, nil
	}
	var byList map[string][]string
	if err := json.Unmarshal([]byte(raw), &byList); err != nil {
		return nil, fmt.Errorf("invalid filters %q: %w", raw, errdefs.ErrInvalidArgument)
	}
	return byList, nil
}

// handler adapts a function returning an error to http.HandlerFunc.
type handler func(w http.ResponseWriter, r *http.Request) error

func (h handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := h(w, r); err != nil {
		writeError(w, err)
	}
}

// completes wraps a handler that changes state (create, start, stop, rm,
// …) so that it runs to the end even when the client goes away: a CLI
// killed mid-request must not cancel a half-done start or removal in the
// daemon, whose cleanup would then race the next command on that
// container (dockerd behaves the same way).
func completes(h handler) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		return h(w, r.WithContext(context.WithoutCancel(r.Context())))
	}
}
