package api

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/engine"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/moby/moby/api/types/common"
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

// predefined are the networks every daemon has (dockerd's
// runconfig.IsPreDefinedNetwork): the type and dangling filters and
// prune treat them apart.
func predefined(name string) bool {
	return name == nettypes.NetworkBridge || name == nettypes.NetworkHost || name == nettypes.NetworkNone
}

func (s *Server) networkList(w http.ResponseWriter, r *http.Request) error {
	f, err := filtersValue(r)
	if err != nil {
		return err
	}
	nets, err := s.e.NetworkList(r.Context())
	if err != nil {
		return err
	}
	out, err := filterNetworks(nets, f)
	if err != nil {
		return err
	}
	// dockerd lists networks without their endpoints (inspect has them);
	// the dangling filter above has already looked at them.
	for i := range out {
		out[i].Containers = map[string]nettypes.EndpointResource{}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// filterNetworks applies `network ls` filters with dockerd's rules
// (daemon/network/filter.go): name and id match as unanchored regular
// expressions or exactly, driver and scope exactly, label by key or
// key=value; dangling and type select by use and by origin.
func filterNetworks(nets []nettypes.Inspect, f map[string][]string) ([]nettypes.Inspect, error) {
	for k := range f {
		switch k {
		case "name", "id", "driver", "label", "scope", "type", "dangling":
		default:
			return nil, fmt.Errorf("invalid filter '%s': %w", k, errdefs.ErrInvalidArgument)
		}
	}
	var dangling *bool
	for _, v := range f["dangling"] {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("invalid filter 'dangling=%s': %w", v, errdefs.ErrInvalidArgument)
		}
		dangling = &b
	}
	for _, v := range f["type"] {
		if v != "custom" && v != "builtin" {
			return nil, fmt.Errorf("invalid filter: 'type'='%s': %w", v, errdefs.ErrInvalidArgument)
		}
	}
	out := []nettypes.Inspect{}
	for _, n := range nets {
		switch {
		case len(f["driver"]) > 0 && !exactMatch(f["driver"], n.Driver),
			len(f["scope"]) > 0 && !exactMatch(f["scope"], n.Scope),
			len(f["name"]) > 0 && !patternMatch(f["name"], n.Name),
			len(f["id"]) > 0 && !patternMatch(f["id"], n.ID),
			len(f["label"]) > 0 && !labelsMatch(f["label"], n.Labels):
			continue
		}
		if dangling != nil && *dangling != (!predefined(n.Name) && len(n.Containers) == 0) {
			continue
		}
		if t := f["type"]; len(t) > 0 && !exactMatch(t, map[bool]string{true: "builtin", false: "custom"}[predefined(n.Name)]) {
			continue
		}
		out = append(out, n)
	}
	return out, nil
}

func exactMatch(values []string, s string) bool {
	for _, v := range values {
		if v == s {
			return true
		}
	}
	return false
}

// patternMatch is dockerd's filters.Args.Match: a value matches when it
// equals s or, as a regular expression, matches anywhere in s.
func patternMatch(values []string, s string) bool {
	for _, v := range values {
		if v == s {
			return true
		}
		if re, err := regexp.Compile(v); err == nil && re.MatchString(s) {
			return true
		}
	}
	return false
}

// labelsMatch requires every "key" or "key=value" filter to hold.
func labelsMatch(filters []string, labels map[string]string) bool {
	for _, f := range filters {
		k, v, hasV := strings.Cut(f, "=")
		got, ok := labels[k]
		if !ok || hasV && got != v {
			return false
		}
	}
	return true
}

// networkInspect adds each endpoint's MAC address, which dockerd shows
// and the engine's network view leaves to the container's own inspect.
func (s *Server) networkInspect(w http.ResponseWriter, r *http.Request) error {
	n, err := s.e.NetworkInspect(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	for id, ep := range n.Containers {
		if ep.MacAddress != nil {
			continue
		}
		ci, err := s.e.ContainerInspect(r.Context(), id, false)
		if err != nil || ci.NetworkSettings == nil {
			continue
		}
		if es := ci.NetworkSettings.Networks[n.Name]; es != nil {
			ep.MacAddress = es.MacAddress
			n.Containers[id] = ep
		}
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

// networkRemove answers a network with endpoints as dockerd does: 403
// (libnetwork's ActiveEndpointsError is a Forbidden error), not 409.
func (s *Server) networkRemove(w http.ResponseWriter, r *http.Request) error {
	ref := r.PathValue("id")
	if ref == nettypes.NetworkHost || ref == nettypes.NetworkNone {
		// The engine has no record of these to find; dockerd refuses.
		return fmt.Errorf("%s is a pre-defined network and cannot be removed: %w", ref, errdefs.ErrPermission)
	}
	if err := s.e.NetworkRemove(r.Context(), ref); err != nil {
		if errdefs.IsConflict(err) {
			writeJSON(w, http.StatusForbidden, common.ErrorResponse{Message: Message(err)})
			return nil
		}
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
		return fmt.Errorf("no container given to connect: %w", errdefs.ErrInvalidArgument)
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

// connectOptions takes what the engine can set on a new endpoint: aliases
// and static IPv4 and IPv6 addresses.
func connectOptions(es *nettypes.EndpointSettings) (engine.NetworkConnectOptions, error) {
	var o engine.NetworkConnectOptions
	if es == nil {
		return o, nil
	}
	o.Aliases = es.Aliases
	switch {
	case len(es.Links) > 0:
		return o, fmt.Errorf("links on network connect are not supported (use aliases): %w", errdefs.ErrNotSupported)
	case len(es.MacAddress) > 0:
		return o, fmt.Errorf("a MAC address on network connect is not supported: %w", errdefs.ErrNotSupported)
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
		return fmt.Errorf("no container given to disconnect: %w", errdefs.ErrInvalidArgument)
	}
	if err := s.e.NetworkDisconnect(r.Context(), r.PathValue("id"), req.Container, req.Force); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// networkPrune: without filters the engine prunes; with until, label or
// label! the candidates are chosen here and removed one by one under the
// engine's rule for "unused" (no endpoint, and no container, running or
// not, configured for the network).
func (s *Server) networkPrune(w http.ResponseWriter, r *http.Request) error {
	f, err := filtersValue(r)
	if err != nil {
		return err
	}
	var deleted []string
	if len(f) == 0 {
		deleted, err = s.e.NetworkPrune(r.Context())
	} else {
		deleted, err = s.prunePicked(r.Context(), f)
	}
	if err != nil {
		return err
	}
	if deleted == nil {
		deleted = []string{}
	}
	writeJSON(w, http.StatusOK, nettypes.PruneReport{NetworksDeleted: deleted})
	return nil
}

func (s *Server) prunePicked(ctx context.Context, f map[string][]string) ([]string, error) {
	var until time.Time
	for k, vs := range f {
		switch k {
		case "label", "label!":
		case "until":
			if len(vs) != 1 {
				return nil, fmt.Errorf("more than one until filter specified: %w", errdefs.ErrInvalidArgument)
			}
			t, err := parseUntil(vs[0], time.Now())
			if err != nil {
				return nil, err
			}
			until = t
		default:
			return nil, fmt.Errorf("invalid filter '%s': %w", k, errdefs.ErrInvalidArgument)
		}
	}
	nets, err := s.e.NetworkList(ctx)
	if err != nil {
		return nil, err
	}
	used := map[string]bool{}
	cs, err := s.e.List(ctx, engine.ListOptions{All: true})
	if err != nil {
		return nil, err
	}
	for _, c := range cs {
		ci, err := s.e.ContainerInspect(ctx, c.ID, false)
		if err != nil || ci.NetworkSettings == nil {
			continue
		}
		for name := range ci.NetworkSettings.Networks {
			used[name] = true
		}
	}
	var out []string
	for _, n := range nets {
		switch {
		case predefined(n.Name), used[n.Name], len(n.Containers) > 0,
			!until.IsZero() && !n.Created.Before(until),
			len(f["label"]) > 0 && !labelsMatch(f["label"], n.Labels),
			len(f["label!"]) > 0 && anyLabel(f["label!"], n.Labels):
			continue
		}
		if err := s.e.NetworkRemove(ctx, n.ID); err != nil {
			if errdefs.IsNotFound(err) || errdefs.IsConflict(err) {
				continue // removed or attached meanwhile: not ours to prune
			}
			return out, err
		}
		out = append(out, n.Name)
	}
	return out, nil
}

// anyLabel reports whether one of the "key" or "key=value" filters holds
// (label! excludes a network that matches any of them).
func anyLabel(filters []string, labels map[string]string) bool {
	for _, f := range filters {
		if labelsMatch([]string{f}, labels) {
			return true
		}
	}
	return false
}

// parseUntil reads Docker's until values: a Go duration before now, Unix
// seconds (with an optional fraction), or an RFC 3339 date or time.
func parseUntil(v string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(v); err == nil {
		return now.Add(-d), nil
	}
	if sec, frac, _ := strings.Cut(v, "."); sec != "" {
		if s, err := strconv.ParseInt(sec, 10, 64); err == nil {
			ns := int64(0)
			if frac != "" {
				f, err := strconv.ParseFloat("0."+frac, 64)
				if err != nil {
					return time.Time{}, fmt.Errorf("invalid until %q: %w", v, errdefs.ErrInvalidArgument)
				}
				ns = int64(f * 1e9)
			}
			return time.Unix(s, ns), nil
		}
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, v, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("invalid until %q: %w", v, errdefs.ErrInvalidArgument)
}
