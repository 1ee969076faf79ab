package api

// Per-request API versions. A client names the version it speaks in the
// path (/v1.43/containers/create); the server strips it before routing and
// keeps it in the request's context, so a handler can give an older client
// the behaviour of its version where dockerd does (create: read-only binds,
// endpoint count, MAC address). A request without a version is served as
// the newest, as dockerd serves it.

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/berth-dev/berth/internal/engine"
	"github.com/berth-dev/berth/internal/enginetypes"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
)

type apiVersionKey struct{}

// withAPIVersion returns r carrying the client's API version.
func withAPIVersion(r *http.Request, v string) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), apiVersionKey{}, v))
}

// requestVersion is the API version r was made with.
func requestVersion(r *http.Request) string {
	if v, ok := r.Context().Value(apiVersionKey{}).(string); ok && v != "" {
		return v
	}
	return APIVersion
}

// deprecatedMACWarning is dockerd's warning for a 1.44 client that still
// sends the container-wide MacAddress.
const deprecatedMACWarning = "The container-wide MacAddress field is now deprecated. It should be specified in EndpointsConfig instead."

// createCompat adapts a create request to the client's API version, as
// dockerd's router does before the daemon sees it, and returns the
// warnings for the response. mac is the request's container-wide
// Config.MacAddress.
//
// Before 1.44: Healthcheck.StartInterval did not exist (dropped), read-only
// binds were read-only at their top mount only (kept so, even where the
// kernel could do more: the client's user expects submounts as they were),
// ReadOnlyForceRecursive is refused rather than ignored (a client that
// sets it expects it enforced), a container was created on one network,
// and the MAC address travelled container-wide (an endpoint's is ignored).
func createCompat(version string, o *engine.CreateOptions, mac string) ([]string, error) {
	var warnings []string
	if enginetypes.VersionLess(version, "1.44") {
		if hc := o.Config.Healthcheck; hc != nil {
			hc.StartInterval = 0
		}
		o.ReadOnlyNonRecursive = true
		for _, m := range o.HostConfig.Mounts {
			if m.Type == mount.TypeBind && m.BindOptions != nil && m.BindOptions.ReadOnlyForceRecursive {
				return nil, fmt.Errorf("BindOptions.ReadOnlyForceRecursive needs API v1.44 or newer: %w", errdefs.ErrInvalidArgument)
			}
		}
		if nc := o.NetworkingConfig; nc != nil && len(nc.EndpointsConfig) > 1 {
			names := make([]string, 0, len(nc.EndpointsConfig))
			for k := range nc.EndpointsConfig {
				names = append(names, k)
			}
			sort.Strings(names)
			return nil, fmt.Errorf("Container cannot be created with multiple network endpoints: %s: %w", strings.Join(names, ", "), errdefs.ErrInvalidArgument) //nolint:staticcheck // dockerd's wording
		}
		if mac == "" && o.NetworkingConfig != nil {
			for _, ep := range o.NetworkingConfig.EndpointsConfig {
				if ep != nil {
					ep.MacAddress = nil
				}
			}
		}
	} else if mac != "" {
		warnings = append(warnings, deprecatedMACWarning)
		m := o.HostConfig.NetworkMode
		if !m.IsBridge() && !m.IsUserDefined() && m != "" && m != "default" {
			// dockerd drops it for host, none and container modes at 1.44.
			return warnings, nil
		}
	}
	if err := legacyMAC(o, mac); err != nil {
		return nil, err
	}
	return warnings, nil
}

// inspectCompat adapts a container's inspect to the client's version.
// Before 1.45 dockerd listed, on each user-defined network, the
// container's short ID and hostname among the endpoint's Aliases
// (duplicates dropped); from 1.45 Aliases are what the client asked for
// and DNSNames (which the engine always fills) has every name. Both are
// DNS names the network's server answers.
func inspectCompat(version string, resp *container.InspectResponse) {
	if !enginetypes.VersionLess(version, "1.45") || resp.NetworkSettings == nil || len(resp.ID) < 12 {
		return
	}
	var hostname string
	if resp.Config != nil {
		hostname = resp.Config.Hostname
	}
	for name, ep := range resp.NetworkSettings.Networks {
		if ep == nil || !container.NetworkMode(name).IsUserDefined() {
			continue
		}
		var aliases []string
		for _, a := range append(slices.Clone(ep.Aliases), resp.ID[:12], hostname) {
			if a != "" && !slices.Contains(aliases, a) {
				aliases = append(aliases, a)
			}
		}
		ep.Aliases = aliases
	}
}
