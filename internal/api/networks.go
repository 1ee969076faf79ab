package api

import (
	"fmt"
	"net"
	"net/http"

	"github.com/berth-dev/berth/internal/engine"
	"github.com/berth-dev/berth/internal/enginetypes"
	"github.com/berth-dev/berth/internal/errdefs"
	nettypes "github.com/moby/moby/api/types/network"
)

func (s *Server) networkRoutes() {
	m := s.mux
	m.Handle("GET /networks", handler(s.networkList))
	m.Handle("POST /networks/create", completes(s.networkCreate))
	m.Handle("POST /networks/prune", completes(s.networkPrune))
	m.Handle("GET /networks/{id}", handler(s.networkInspect))
	m.Handle("DELETE /networks/{id}", completes(s.networkRemove))
	m.Handle("POST /networks/{id}/connect", completes(s.networkConnect))
	m.Handle("POST /networks/{id}/disconnect", completes(s.networkDisconnect))
}

func (s *Server) networkList(w http.ResponseWriter, r *http.Request) error {
	f, err := filtersValue(r)
	if err != nil {
		return err
	}
	out, err := s.e.NetworkList(r.Context(), f)
	if err != nil {
		return err
	}
	// dockerd lists networks without their endpoints (inspect has them);
	// the engine's dangling filter has already looked at them.
	for i := range out {
		out[i].Containers = map[string]nettypes.EndpointResource{}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) networkInspect(w http.ResponseWriter, r *http.Request) error {
	n, err := s.e.NetworkInspect(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, n)
	return nil
}

// builtinDrivers are the drivers dockerd has without plugins; any other
// name is a plugin dockerd would look up, and so reports as not found.
var builtinDrivers = map[string]bool{"bridge": true, "host": true, "null": true, "overlay": true, "macvlan": true, "ipvlan": true}

func (s *Server) networkCreate(w http.ResponseWriter, r *http.Request) error {
	var req nettypes.CreateRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	if req.Name == "" {
		return fmt.Errorf("network name is required: %w", errdefs.ErrInvalidArgument)
	}
	o, err := createOptions(req)
	if err != nil {
		return err
	}
	resp, err := s.e.NetworkCreate(r.Context(), req.Name, o)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, resp)
	return nil
}

// createOptions translates Docker's create request into the engine's
// options, refusing what the engine cannot honour rather than dropping it.
func createOptions(req nettypes.CreateRequest) (engine.NetworkCreateOptions, error) {
	o := engine.NetworkCreateOptions{Driver: req.Driver, Internal: req.Internal, Options: req.Options, Labels: req.Labels}
	if o.Driver != "" && !builtinDrivers[o.Driver] {
		return o, fmt.Errorf("plugin %q not found: %w", o.Driver, errdefs.ErrNotFound)
	}
	switch {
	case req.Scope != "" && req.Scope != "local":
		return o, fmt.Errorf("network scope %q is not supported (berth has local networks only): %w", req.Scope, errdefs.ErrNotSupported)
	case req.Ingress, req.ConfigOnly, req.ConfigFrom != nil && req.ConfigFrom.Network != "":
		return o, fmt.Errorf("ingress and config-only networks are not supported: %w", errdefs.ErrNotSupported)
	case req.EnableIPv4 != nil && !*req.EnableIPv4:
		return o, fmt.Errorf("networks without IPv4 are not supported: %w", errdefs.ErrNotSupported)
	}
	o.IPv6 = req.EnableIPv6 != nil && *req.EnableIPv6
	if req.IPAM == nil {
		return o, nil
	}
	if d := req.IPAM.Driver; d != "" && d != "default" {
		return o, fmt.Errorf("plugin %q not found: %w", d, errdefs.ErrNotFound)
	}
	var v4, v6 bool
	for _, c := range req.IPAM.Config {
		if !c.Subnet.IsValid() {
			if c.Gateway.IsValid() || c.IPRange.IsValid() {
				return o, fmt.Errorf("gateway and ip-range need a subnet: %w", errdefs.ErrInvalidArgument)
			}
			continue
		}
		if len(c.AuxAddress) > 0 {
			return o, fmt.Errorf("auxiliary addresses are not supported: %w", errdefs.ErrNotSupported)
		}
		if c.Subnet.Addr().Is6() {
			if v6 {
				return o, fmt.Errorf("only one IPv6 subnet per network is supported: %w", errdefs.ErrNotSupported)
			}
			if c.IPRange.IsValid() {
				return o, fmt.Errorf("an IPv6 ip-range is not supported: %w", errdefs.ErrNotSupported)
			}
			v6, o.IPv6 = true, true
			o.Subnet6 = c.Subnet.String()
			if c.Gateway.IsValid() {
				o.Gateway6 = c.Gateway.String()
			}
			continue
		}
		if v4 {
			return o, fmt.Errorf("only one IPv4 subnet per network is supported: %w", errdefs.ErrNotSupported)
		}
		v4 = true
		o.Subnet = c.Subnet.String()
		if c.Gateway.IsValid() {
			o.Gateway = c.Gateway.String()
		}
		if c.IPRange.IsValid() {
			o.IPRange = c.IPRange.String()
		}
	}
	return o, nil
}

// networkRemove: the engine refuses a network in use and the predefined
// ones as dockerd does (403, a permission error).
func (s *Server) networkRemove(w http.ResponseWriter, r *http.Request) error {
	if err := s.e.NetworkRemove(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) networkConnect(w http.ResponseWriter, r *http.Request) error {
	var req nettypes.ConnectRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	if req.Container == "" {
		return fmt.Errorf("invalid name or ID supplied: \"\": %w", errdefs.ErrInvalidArgument)
	}
	if es := req.EndpointConfig; es != nil && enginetypes.VersionLess(requestVersion(r), "1.44") {
		// Before 1.44 dockerd ignored an endpoint's MAC address (the
		// container-wide one was the only one), as create does for
		// such clients.
		es.MacAddress = nil
	}
	o, err := connectOptions(req.EndpointConfig)
	if err != nil {
		return err
	}
	if err := s.e.NetworkConnect(r.Context(), r.PathValue("id"), req.Container, o); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// connectOptions takes what the engine can set on a new endpoint: aliases,
// static IPv4 and IPv6 addresses and a MAC address.
func connectOptions(es *nettypes.EndpointSettings) (engine.NetworkConnectOptions, error) {
	var o engine.NetworkConnectOptions
	if es == nil {
		return o, nil
	}
	o.Aliases, o.MAC = es.Aliases, net.HardwareAddr(es.MacAddress)
	switch {
	case len(es.Links) > 0:
		return o, fmt.Errorf("links on network connect are not supported (use aliases): %w", errdefs.ErrNotSupported)
	case len(es.DriverOpts) > 0:
		return o, fmt.Errorf("driver options on network connect are not supported: %w", errdefs.ErrNotSupported)
	}
	if c := es.IPAMConfig; c != nil {
		o.IP, o.IPv6 = c.IPv4Address, c.IPv6Address
	}
	return o, nil
}

func (s *Server) networkDisconnect(w http.ResponseWriter, r *http.Request) error {
	var req nettypes.DisconnectRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	if req.Container == "" {
		return fmt.Errorf("invalid name or ID supplied: \"\": %w", errdefs.ErrInvalidArgument)
	}
	if err := s.e.NetworkDisconnect(r.Context(), r.PathValue("id"), req.Container, req.Force); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// networkPrune: the engine applies the filters (until, label, label!)
// and its rule for "unused" (no endpoint, and no container, running or
// not, configured for the network).
func (s *Server) networkPrune(w http.ResponseWriter, r *http.Request) error {
	f, err := filtersValue(r)
	if err != nil {
		return err
	}
	deleted, err := s.e.NetworkPrune(r.Context(), f)
	if err != nil {
		return err
	}
	if deleted == nil {
		deleted = []string{}
	}
	writeJSON(w, http.StatusOK, nettypes.PruneReport{NetworksDeleted: deleted})
	return nil
}
