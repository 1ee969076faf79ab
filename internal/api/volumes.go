package api

import (
	"net/http"

	volumetypes "github.com/moby/moby/api/types/volume"
)

func (s *Server) volumeRoutes() {
	m := s.mux
	m.Handle("GET /volumes", handler(s.volumeList))
	m.Handle("POST /volumes/create", completes(s.volumeCreate))
	m.Handle("POST /volumes/prune", completes(s.volumePrune))
	m.Handle("GET /volumes/{name}", handler(s.volumeInspect))
	m.Handle("DELETE /volumes/{name}", completes(s.volumeRemove))
}

func (s *Server) volumeList(w http.ResponseWriter, r *http.Request) error {
	vs, err := s.e.VolumeList(r.Context())
	if err != nil {
		return err
	}
	if vs == nil {
		vs = []volumetypes.Volume{}
	}
	writeJSON(w, http.StatusOK, volumetypes.ListResponse{Volumes: vs, Warnings: []string{}})
	return nil
}

func (s *Server) volumeCreate(w http.ResponseWriter, r *http.Request) error {
	var req volumetypes.CreateRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	v, err := s.e.VolumeCreate(r.Context(), req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, v)
	return nil
}

func (s *Server) volumeInspect(w http.ResponseWriter, r *http.Request) error {
	v, err := s.e.VolumeInspect(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (s *Server) volumeRemove(w http.ResponseWriter, r *http.Request) error {
	if err := s.e.VolumeRemove(r.Context(), r.PathValue("name"), boolValue(r, "force")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// volumePrune: Docker prunes anonymous volumes unless all=true; label and
// label! filters select by labels.
func (s *Server) volumePrune(w http.ResponseWriter, r *http.Request) error {
	f, err := filtersValue(r)
	if err != nil {
		return err
	}
	all := false
	for _, v := range f["all"] {
		all = all || v == "true" || v == "1"
	}
	deleted, reclaimed, err := s.e.VolumePrune(r.Context(), all, f["label"], f["label!"])
	if err != nil {
		return err
	}
	if deleted == nil {
		deleted = []string{}
	}
	writeJSON(w, http.StatusOK, volumetypes.PruneReport{VolumesDeleted: deleted, SpaceReclaimed: reclaimed})
	return nil
}
