package client

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/network"
	nettypes "github.com/moby/moby/api/types/network"
)

func npath(ref, action string) string {
	p := "/networks/" + url.PathEscape(ref)
	if action != "" {
		p += "/" + action
	}
	return p
}

// NetworkCreate makes a user-defined network from `network create`'s
// options, sent as Docker's create request (one IPAM config per address
// family, the bridge name as Docker's bridge option).
func (c *Client) NetworkCreate(ctx context.Context, name string, o network.CreateOptions) (nettypes.CreateResponse, error) {
	req := nettypes.CreateRequest{Name: name, Driver: o.Driver, Internal: o.Internal, Options: o.Options, Labels: o.Labels}
	if o.IPv6 {
		req.EnableIPv6 = &o.IPv6
	}
	if o.Bridge != "" {
		req.Options = map[string]string{}
		for k, v := range o.Options {
			req.Options[k] = v
		}
		req.Options["com.docker.network.bridge.name"] = o.Bridge
	}
	var cfgs []nettypes.IPAMConfig
	for _, fam := range []struct{ subnet, gateway, ipRange string }{{o.Subnet, o.Gateway, o.IPRange}, {o.Subnet6, o.Gateway6, ""}} {
		if fam.subnet == "" && fam.gateway == "" && fam.ipRange == "" {
			continue
		}
		var cfg nettypes.IPAMConfig
		var err error
		if fam.subnet != "" {
			if cfg.Subnet, err = netip.ParsePrefix(fam.subnet); err != nil {
				return nettypes.CreateResponse{}, fmt.Errorf("invalid subnet %q: %w", fam.subnet, errdefs.ErrInvalidArgument)
			}
		}
		if fam.gateway != "" {
			if cfg.Gateway, err = netip.ParseAddr(fam.gateway); err != nil {
				return nettypes.CreateResponse{}, fmt.Errorf("invalid gateway %q: %w", fam.gateway, errdefs.ErrInvalidArgument)
			}
		}
		if fam.ipRange != "" {
			if cfg.IPRange, err = netip.ParsePrefix(fam.ipRange); err != nil {
				return nettypes.CreateResponse{}, fmt.Errorf("invalid ip-range %q: %w", fam.ipRange, errdefs.ErrInvalidArgument)
			}
		}
		cfgs = append(cfgs, cfg)
	}
	if cfgs != nil {
		req.IPAM = &nettypes.IPAM{Driver: "default", Config: cfgs}
	}
	var resp nettypes.CreateResponse
	err := c.doJSON(ctx, http.MethodPost, "/networks/create", nil, req, &resp)
	return resp, err
}

// NetworkList lists the daemon's networks that pass Docker's filters f
// (nil for all; the daemon filters, as dockerd does), without their
// endpoints, as dockerd: NetworkInspect has those.
func (c *Client) NetworkList(ctx context.Context, f map[string][]string) ([]nettypes.Inspect, error) {
	var out []nettypes.Inspect
	err := c.doJSON(ctx, http.MethodGet, "/networks", filtersQuery(f), nil, &out)
	return out, err
}

// filtersQuery is the filters query parameter, nil without filters.
func filtersQuery(f map[string][]string) url.Values {
	if len(f) == 0 {
		return nil
	}
	return url.Values{"filters": {filtersParam(f)}}
}

// NetworkInspect returns a network by name or ID (prefix).
func (c *Client) NetworkInspect(ctx context.Context, ref string) (nettypes.Inspect, error) {
	var out nettypes.Inspect
	err := c.doJSON(ctx, http.MethodGet, npath(ref, ""), nil, nil, &out)
	return out, err
}

// NetworkRemove removes a network without endpoints.
func (c *Client) NetworkRemove(ctx context.Context, ref string) error {
	return c.doJSON(ctx, http.MethodDelete, npath(ref, ""), nil, nil, nil)
}

// NetworkPrune removes unused user-defined networks that Docker's prune
// filters f (until, label, label!) do not spare, and returns their names.
func (c *Client) NetworkPrune(ctx context.Context, f map[string][]string) ([]string, error) {
	var out nettypes.PruneReport
	err := c.doJSON(ctx, http.MethodPost, "/networks/prune", filtersQuery(f), nil, &out)
	return out.NetworksDeleted, err
}

// NetworkConnect attaches a container to a network with Docker's endpoint
// settings (aliases, a static address); es may be nil.
func (c *Client) NetworkConnect(ctx context.Context, net, ctr string, es *nettypes.EndpointSettings) error {
	return c.doJSON(ctx, http.MethodPost, npath(net, "connect"), nil, nettypes.ConnectRequest{Container: ctr, EndpointConfig: es}, nil)
}

// NetworkDisconnect detaches a container from a network.
func (c *Client) NetworkDisconnect(ctx context.Context, net, ctr string, force bool) error {
	return c.doJSON(ctx, http.MethodPost, npath(net, "disconnect"), nil, nettypes.DisconnectRequest{Container: ctr, Force: force}, nil)
}
