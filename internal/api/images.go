package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/berth-dev/berth/internal/engine"
	"github.com/berth-dev/berth/internal/enginetypes"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/imagearchive"
	"github.com/berth-dev/berth/internal/registry"
	imagetypes "github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/jsonstream"
)

func (s *Server) imageRoutes() {
	m := s.mux
	m.Handle("GET /images/json", handler(s.imageList))
	m.Handle("POST /images/create", handler(s.imageCreate))
	m.Handle("POST /images/load", handler(s.imageLoad))
	m.Handle("GET /images/get", handler(s.imageSave))
	m.Handle("POST /images/prune", completes(s.imagePrune))
	// Image names contain slashes, so the name is everything between
	// /images/ and the action (as dockerd's {name:.*} routes).
	m.Handle("GET /images/{rest...}", handler(s.imageGet))
	m.Handle("POST /images/{rest...}", handler(s.imagePost))
	m.Handle("DELETE /images/{rest...}", completes(s.imageDelete))
}

// Progress is one message of Docker's JSON progress stream, with the
// "error" string older clients read next to errorDetail.
type Progress struct {
	jsonstream.Message
	ErrorMessage string `json:"error,omitempty"`
}

// progressStream writes Docker's JSON progress messages, flushed one by
// one; the engine's event callbacks are serialized, the final writes come
// after the engine returns, and the mutex covers the rest.
type progressStream struct {
	mu  sync.Mutex
	w   http.ResponseWriter
	enc *json.Encoder
}

func newProgressStream(w http.ResponseWriter) *progressStream {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	return &progressStream{w: w, enc: json.NewEncoder(w)}
}

func (p *progressStream) send(m Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	_ = p.enc.Encode(m)
	if fl, ok := p.w.(http.Flusher); ok {
		fl.Flush()
	}
}

// event sends one engine event. Only the statuses that are under way
// (Downloading, Extracting, Pushing) carry progress, as dockerd's do: the
// docker CLI leaves out every message with progress when its output is
// not a terminal, so a "Pushed" or "Pull complete" carrying byte counts
// would vanish from CI logs.
func (p *progressStream) event(ev engine.Event) {
	m := Progress{Message: jsonstream.Message{ID: ev.ID, Status: ev.Status}}
	if ev.UnderWay() && (ev.Total > 0 || ev.Current > 0) {
		m.Progress = &jsonstream.Progress{Current: ev.Current, Total: ev.Total}
	}
	p.send(m)
}

func (p *progressStream) status(s string) { p.send(Progress{Message: jsonstream.Message{Status: s}}) }

func (p *progressStream) stream(s string) { p.send(Progress{Message: jsonstream.Message{Stream: s}}) }

// aux sends a result as an aux message (Docker's CLI skips those it does
// not know; internal/client reads them).
func (p *progressStream) aux(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	raw := json.RawMessage(b)
	p.send(Progress{Message: jsonstream.Message{Aux: &raw}})
}

func (p *progressStream) fail(err error) {
	msg := Message(err)
	p.send(Progress{Message: jsonstream.Message{Error: &jsonstream.Error{Code: StatusCode(err), Message: msg}}, ErrorMessage: msg})
}

func (s *Server) imageList(w http.ResponseWriter, r *http.Request) error {
	f, err := filtersValue(r)
	if err != nil {
		return err
	}
	list, err := s.e.ImageList(r.Context(), f)
	if err != nil {
		return err
	}
	if enginetypes.VersionLess(requestVersion(r), "1.44") {
		old := make([]summaryV143, len(list))
		for i, sum := range list {
			old[i] = summaryV143{Summary: sum, VirtualSize: sum.Size}
		}
		writeJSON(w, http.StatusOK, old)
		return nil
	}
	if list == nil {
		list = []imagetypes.Summary{}
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

// summaryV143 and inspectV143 carry VirtualSize, which API 1.44 removed:
// dockerd fills it with Size for older clients (a client of 1.43 or
// before may still read it; the CLI's --format {{.VirtualSize}} did),
// and omits it from 1.44 on. Berth has no shared-parent layers to count
// apart, so Size is the virtual size too.
type summaryV143 struct {
	imagetypes.Summary
	VirtualSize int64 `json:"VirtualSize,omitempty"`
}

type inspectV143 struct {
	imagetypes.InspectResponse
	VirtualSize int64 `json:"VirtualSize,omitempty"`
}

// imageCreate is a pull (fromImage) or an import (fromSrc=-, the tarball in
// the body), answered with a JSON progress stream.
func (s *Server) imageCreate(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if src := q.Get("fromSrc"); src != "" {
		if src != "-" {
			return fmt.Errorf("import from a URL: %w", errdefs.ErrNotSupported)
		}
		ref := q.Get("repo")
		if ref != "" && q.Get("tag") != "" {
			ref += ":" + q.Get("tag")
		}
		opts := imagearchive.ImportOptions{Changes: q["changes"], Message: q.Get("message")}
		if pl := q.Get("platform"); pl != "" {
			p, err := engine.ParsePlatform(pl)
			if err != nil {
				return err
			}
			opts.Platform = p
		}
		ps := newProgressStream(w)
		id, err := s.e.Import(r.Context(), r.Body, ref, opts)
		if err != nil {
			ps.fail(err)
			return nil
		}
		ps.status(id)
		return nil
	}
	ref := q.Get("fromImage")
	if ref == "" {
		return fmt.Errorf("fromImage or fromSrc is required: %w", errdefs.ErrInvalidArgument)
	}
	// A repository without tag or digest, and no tag: every tag (the
	// API's rule; docker pull adds :latest itself unless -a).
	if q.Get("tag") == "" {
		if repo, err := registry.Repository(ref); err == nil {
			return s.pullAllTags(w, r, repo)
		}
	}
	if tag := q.Get("tag"); tag != "" {
		if strings.Contains(tag, ":") {
			ref += "@" + tag
		} else {
			ref += ":" + tag
		}
	}
	// Bad references fail before the stream starts, with a status code.
	if _, err := registry.Normalize(ref); err != nil {
		return err
	}
	ps := newProgressStream(w)
	res, err := s.e.Pull(r.Context(), ref, engine.PullOptions{Platform: q.Get("platform"), Events: ps.event, Auth: requestAuth(r, ref)})
	if err != nil {
		ps.fail(err)
		return nil
	}
	if _, d, ok := strings.Cut(res.Digest, "@"); ok {
		ps.status("Digest: " + d)
	}
	ps.status(res.Status(registry.FamiliarName(res.Name)))
	ps.aux(res)
	return nil
}

func (s *Server) pullAllTags(w http.ResponseWriter, r *http.Request, repo string) error {
	ps := newProgressStream(w)
	res, err := s.e.PullAllTags(r.Context(), repo, engine.PullOptions{Platform: r.URL.Query().Get("platform"), Events: ps.event, Auth: requestAuth(r, repo)})
	if err != nil {
		ps.fail(err)
		return nil
	}
	ps.status(res.Status(registry.FamiliarRepository(res.Name)))
	ps.aux(res)
	return nil
}

func (s *Server) imageLoad(w http.ResponseWriter, r *http.Request) error {
	ps := newProgressStream(w)
	names, err := s.e.Load(r.Context(), r.Body, ps.event)
	if err != nil {
		ps.fail(err)
		return nil
	}
	for _, n := range names {
		if strings.HasPrefix(n, "sha256:") {
			ps.stream("Loaded image ID: " + n + "\n")
		} else {
			ps.stream("Loaded image: " + registry.FamiliarName(n) + "\n")
		}
	}
	ps.aux(names)
	return nil
}

// imageSave writes a docker-archive (Docker's format), or an OCI archive
// with berth's format=oci.
func (s *Server) imageSave(w http.ResponseWriter, r *http.Request) error {
	return s.save(w, r, r.URL.Query()["names"])
}

func (s *Server) save(w http.ResponseWriter, r *http.Request, names []string) error {
	if len(names) == 0 {
		return fmt.Errorf("no image names given: %w", errdefs.ErrInvalidArgument)
	}
	f := imagearchive.DockerArchive
	if r.URL.Query().Get("format") == "oci" {
		f = imagearchive.OCIArchive
	}
	for _, n := range names {
		if _, err := s.e.ImageInspect(r.Context(), n); err != nil {
			return err
		}
	}
	w.Header().Set("Content-Type", "application/x-tar")
	if err := s.e.Save(r.Context(), w, names, f); err != nil {
		// Mid-stream the status is sent: drop the connection without the
		// final chunk so the client sees a truncated body, not success.
		if conn, _, herr := http.NewResponseController(w).Hijack(); herr == nil {
			conn.Close()
		}
	}
	return nil
}

func (s *Server) imagePrune(w http.ResponseWriter, r *http.Request) error {
	f, err := filtersValue(r)
	if err != nil {
		return err
	}
	items, reclaimed, err := s.e.PruneImages(r.Context(), f)
	if err != nil {
		return err
	}
	rep := imagetypes.PruneReport{ImagesDeleted: []imagetypes.DeleteResponse{}, SpaceReclaimed: uint64(max(reclaimed, 0))}
	for _, it := range items {
		rep.ImagesDeleted = append(rep.ImagesDeleted, imagetypes.DeleteResponse{Untagged: it.Untagged, Deleted: it.Deleted})
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}

// splitAction splits "docker.io/library/busybox:latest/json" into the
// name and the action; known is the set of actions of the method.
func splitAction(rest string, known ...string) (name, action string) {
	for _, a := range known {
		if n, ok := strings.CutSuffix(rest, "/"+a); ok && n != "" {
			return n, a
		}
	}
	return rest, ""
}

func (s *Server) imageGet(w http.ResponseWriter, r *http.Request) error {
	name, action := splitAction(r.PathValue("rest"), "json", "history", "get")
	switch action {
	case "json":
		resp, err := s.e.ImageInspect(r.Context(), name)
		if err != nil {
			return err
		}
		if enginetypes.VersionLess(requestVersion(r), "1.44") {
			writeJSON(w, http.StatusOK, inspectV143{InspectResponse: resp, VirtualSize: resp.Size})
			return nil
		}
		writeJSON(w, http.StatusOK, resp)
	case "history":
		h, err := s.e.History(r.Context(), name)
		if err != nil {
			return err
		}
		if h == nil {
			h = []imagetypes.HistoryResponseItem{}
		}
		writeJSON(w, http.StatusOK, h)
	case "get":
		return s.save(w, r, []string{name})
	default:
		return fmt.Errorf("page not found: %w", errdefs.ErrNotFound)
	}
	return nil
}

func (s *Server) imagePost(w http.ResponseWriter, r *http.Request) error {
	name, action := splitAction(r.PathValue("rest"), "tag", "push")
	q := r.URL.Query()
	switch action {
	case "tag":
		target := q.Get("repo")
		if target == "" {
			return fmt.Errorf("repository name is required: %w", errdefs.ErrInvalidArgument)
		}
		if t := q.Get("tag"); t != "" {
			target += ":" + t
		}
		if err := s.e.Tag(r.Context(), name, target); err != nil {
			return err
		}
		w.WriteHeader(http.StatusCreated)
	case "push":
		ref := name
		if t := q.Get("tag"); t != "" {
			ref += ":" + t
		} else if repo, err := registry.Repository(name); err == nil {
			// No tag anywhere: every local tag (docker push -a; the
			// docker CLI sends :latest itself otherwise).
			return s.pushAllTags(w, r, repo)
		}
		if _, err := s.e.ImageInspect(r.Context(), ref); err != nil {
			return err
		}
		ps := newProgressStream(w)
		res, err := s.e.PushWithAuth(r.Context(), ref, ps.event, requestAuth(r, ref))
		if err != nil {
			ps.fail(err)
			return nil
		}
		ps.status(fmt.Sprintf("%s: digest: %s size: %d", res.Tag, res.Digest, res.Size))
		ps.aux(res)
	default:
		return fmt.Errorf("page not found: %w", errdefs.ErrNotFound)
	}
	return nil
}

func (s *Server) pushAllTags(w http.ResponseWriter, r *http.Request, repo string) error {
	ps := newProgressStream(w)
	ps.status("The push refers to repository [" + repo + "]")
	res, err := s.e.PushAllTagsWithAuth(r.Context(), repo, ps.event, requestAuth(r, repo))
	if err != nil {
		ps.fail(err)
		return nil
	}
	ps.aux(res)
	return nil
}

func (s *Server) imageDelete(w http.ResponseWriter, r *http.Request) error {
	items, err := s.e.RemoveImage(r.Context(), r.PathValue("rest"), boolValue(r, "force"))
	if err != nil {
		return err
	}
	out := []imagetypes.DeleteResponse{}
	for _, it := range items {
		out = append(out, imagetypes.DeleteResponse{Untagged: it.Untagged, Deleted: it.Deleted})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
