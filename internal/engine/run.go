package engine

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/network"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	nettypes "github.com/moby/moby/api/types/network"
)

// Create makes a container from an image already in the store: its record
// and its writable snapshot. Nothing runs yet.
func (e *Engine) Create(ctx context.Context, opts CreateOptions) (_ *Container, retErr error) {
	Mark("create")
	warmProcessStart()
	endpoints, err := e.createEndpointSet(&opts.HostConfig, opts.NetworkingConfig)
	if err != nil {
		return nil, err
	}
	if err := e.checkStaticAddresses(endpoints); err != nil {
		return nil, err
	}
	// Before the image, as dockerd checks it: an unknown runtime is the
	// request's fault whatever the image. The rro probe below asks it.
	runtimeName, runtimePath, err := e.resolveRuntime(opts.HostConfig.Runtime)
	if err != nil {
		return nil, err
	}
	img, err := e.images.Get(ctx, opts.Config.Image)
	if err != nil {
		return nil, err
	}
	icfg, err := e.images.Config(ctx, img)
	if err != nil {
		return nil, err
	}
	c := &Container{
		ID:          newID(),
		Name:        strings.TrimPrefix(opts.Name, "/"),
		Created:     time.Now().UTC(),
		ImageRef:    opts.Config.Image,
		ImageID:     img.ID.String(),
		Config:      opts.Config,
		HostConfig:  opts.HostConfig,
		RuntimePath: runtimePath,
		Endpoints:   endpoints,
		Driver:      e.snaps.Driver(),
	}
	c.Snapshot = c.ID
	c.HostConfig.Runtime = runtimeName
	if c.Name == "" {
		c.Name = randomName(c.ID)
	} else if !validName(c.Name) {
		return nil, fmt.Errorf("invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed: %w", c.Name, errdefs.ErrInvalidArgument)
	}
	// The image's config supplies what the request leaves out, as in Docker:
	// env merged (request wins), entrypoint and cmd, workdir, user.
	cfg := &c.Config
	cfg.Env = mergeEnv(icfg.Config.Env, cfg.Env)
	if cfg.Entrypoint == nil {
		cfg.Entrypoint = icfg.Config.Entrypoint
		if len(cfg.Cmd) == 0 {
			cfg.Cmd = icfg.Config.Cmd
		}
	} else if len(cfg.Entrypoint) == 1 && cfg.Entrypoint[0] == "" {
		// --entrypoint "" clears the image's entrypoint.
		cfg.Entrypoint = nil
	}
	if cfg.WorkingDir == "" {
		cfg.WorkingDir = icfg.Config.WorkingDir
	}
	if cfg.User == "" {
		cfg.User = icfg.Config.User
	}
	if cfg.Hostname == "" {
		cfg.Hostname = c.ID[:12]
	}
	if cfg.Labels == nil {
		cfg.Labels = map[string]string{}
	}
	for k, v := range icfg.Config.Labels {
		if _, ok := cfg.Labels[k]; !ok {
			cfg.Labels[k] = v
		}
	}
	// The image's EXPOSEd ports join the request's (-P publishes them,
	// inspect lists them), as dockerd merges them. A port the image
	// spells wrongly is left out rather than failing the create.
	for p := range icfg.Config.ExposedPorts {
		port, err := nettypes.ParsePort(p)
		if err != nil {
			continue
		}
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = nettypes.PortSet{}
		}
		cfg.ExposedPorts[port] = struct{}{}
	}
	// The image's VOLUMEs become anonymous volumes, as in Docker.
	for p := range icfg.Config.Volumes {
		if cfg.Volumes == nil {
			cfg.Volumes = map[string]struct{}{}
		}
		cfg.Volumes[p] = struct{}{}
	}
	if len(cfg.Entrypoint)+len(cfg.Cmd) == 0 {
		return nil, fmt.Errorf("no command specified: %w", errdefs.ErrInvalidArgument)
	}
	if err := e.settleReadOnlyRecursion(ctx, c, opts.ReadOnlyNonRecursive); err != nil {
		return nil, err
	}
	Mark("create: image config read")
	if _, err := e.snaps.Prepare(ctx, c.Snapshot, img.ChainID.String(), map[string]string{"berth.container": c.ID}); err != nil {
		return nil, fmt.Errorf("create %s: %w", c.Name, err)
	}
	defer func() {
		if retErr != nil {
			_ = e.snaps.Remove(context.WithoutCancel(ctx), c.Snapshot)
		}
	}()
	Mark("create: snapshot prepared")
	// Flags are validated (exit 125 at create, as in Docker) and volumes
	// created before the record exists.
	if err := e.prepareCreate(ctx, c); err != nil {
		return nil, err
	}
	Mark("create: validated")
	generated := opts.Name == ""
	for i := 2; ; i++ {
		err := e.addContainer(c)
		if err == nil {
			Mark("create: record written")
			e.emit(events.ContainerEventType, events.ActionCreate, c, nil)
			return c, nil
		}
		if !generated || !errdefs.IsConflict(err) || i > 100 {
			return nil, err
		}
		c.Name = randomName(c.ID) + "_" + strconv.Itoa(i)
	}
}

// checkStaticAddresses refuses at create, as dockerd does, static
// addresses that the endpoint's network cannot hold. A native network's
// recorded subnets are what its IPAM hands out from; a network that a
// user's conflist runs is left to its plugins, at start.
func (e *Engine) checkStaticAddresses(eps map[string]*nettypes.EndpointSettings) error {
	for name, es := range eps {
		if es.IPAMConfig == nil || (!es.IPAMConfig.IPv4Address.IsValid() && !es.IPAMConfig.IPv6Address.IsValid()) {
			continue
		}
		store, err := e.networks()
		if err != nil {
			return err
		}
		n, err := store.Get(name)
		if err != nil || !store.Native(n) {
			continue // start reports a missing network
		}
		if err := network.ValidateStatic(n, es.IPAMConfig.IPv4Address, es.IPAMConfig.IPv6Address); err != nil {
			return err
		}
	}
	return nil
}

// sameNetwork reports whether two references name one existing network.
func (e *Engine) sameNetwork(a, b string) bool {
	store, err := e.networks()
	if err != nil {
		return false
	}
	na, err := store.Get(a)
	if err != nil {
		return false
	}
	nb, err := store.Get(b)
	return err == nil && na.Name == nb.Name
}

// mergeEnv overlays over on base by variable name, keeping base's order.
func mergeEnv(base, over []string) []string {
	out := append([]string{}, base...)
	for _, kv := range over {
		k, _, _ := strings.Cut(kv, "=")
		replaced := false
		for i, b := range out {
			if bk, _, _ := strings.Cut(b, "="); bk == k {
				out[i], replaced = kv, true
			}
		}
		if !replaced {
			out = append(out, kv)
		}
	}
	return out
}

// createEndpointSet validates a create request's endpoint settings and
// returns those to keep with the record. Since API 1.44 a request may name
// several networks, as `docker run --network a --network b` sends them:
// the container is connected to all of them when it starts, the network
// mode's first (eth0, the default route and published ports). The mode's
// endpoint is checked by createEndpoints; every other one must name an
// existing network (by name, ID or ID prefix, kept under its name, as
// connect keeps it) and passes the same checks against that network.
func (e *Engine) createEndpointSet(hc *container.HostConfig, nc *nettypes.NetworkingConfig) (map[string]*nettypes.EndpointSettings, error) {
	if nc == nil || len(nc.EndpointsConfig) <= 1 {
		return createEndpoints(hc, nc, e.sameNetwork)
	}
	mode := string(hc.NetworkMode)
	if mode == "" || mode == "default" {
		mode = network.DefaultNetwork
	}
	// dockerd's refusals for modes that cannot take a second network.
	switch m := container.NetworkMode(mode); {
	case m.IsHost():
		return nil, fmt.Errorf("container cannot be disconnected from host network or connected to host network: %w", errdefs.ErrInvalidArgument)
	case m.IsNone():
		return nil, fmt.Errorf("container cannot be connected to multiple networks with one of the networks in private (none) mode: %w", errdefs.ErrInvalidArgument)
	case m.IsContainer():
		return nil, fmt.Errorf("container sharing network namespace with another container or host cannot be connected to any other network: %w", errdefs.ErrInvalidArgument)
	}
	primary := map[string]*nettypes.EndpointSettings{}
	var others []string
	for k, es := range nc.EndpointsConfig {
		if k == mode || (k == "default" && mode == network.DefaultNetwork) || e.sameNetwork(k, mode) {
			primary[k] = es
		} else {
			others = append(others, k)
		}
	}
	sort.Strings(others)
	out, err := createEndpoints(hc, &nettypes.NetworkingConfig{EndpointsConfig: primary}, e.sameNetwork)
	if err != nil {
		return nil, err
	}
	if out == nil {
		out = map[string]*nettypes.EndpointSettings{}
	}
	var store *network.Store
	if len(others) > 0 {
		if store, err = e.networks(); err != nil {
			return nil, err
		}
	}
	for _, k := range others {
		n, err := store.Get(k)
		if err != nil {
			return nil, err
		}
		if _, dup := out[n.Name]; dup || n.Name == mode {
			return nil, fmt.Errorf("network %q is specified multiple times: %w", k, errdefs.ErrInvalidArgument)
		}
		// The same checks as for the mode's endpoint, with this network
		// standing as the mode: what a user-defined network allows
		// (aliases, static addresses) depends on the network itself.
		hcn := container.HostConfig{NetworkMode: container.NetworkMode(n.Name)}
		one, err := createEndpoints(&hcn, &nettypes.NetworkingConfig{EndpointsConfig: map[string]*nettypes.EndpointSettings{k: nc.EndpointsConfig[k]}},
			func(a, b string) bool { return a == k && b == n.Name })
		if err != nil {
			return nil, err
		}
		out[n.Name] = one[n.Name]
	}
	return out, nil
}

// createEndpoints validates a create request's NetworkingConfig against
// the container's network mode, as dockerd does, and returns the endpoint
// settings to keep with the record, keyed by the mode's network as
// readNetRecord looks them up. It checks the mode's endpoint alone
// (createEndpointSet splits a request that names several networks), so
// the one endpoint must be the mode's network; same resolves a network
// reference (name, ID or ID prefix) to its name, so that the docker CLI's
// key (the --network value) matches however the network was named. The
// messages are dockerd's where the docker CLI shows them.
func createEndpoints(hc *container.HostConfig, nc *nettypes.NetworkingConfig, same func(a, b string) bool) (map[string]*nettypes.EndpointSettings, error) {
	if nc == nil || len(nc.EndpointsConfig) == 0 {
		return nil, nil
	}
	if len(nc.EndpointsConfig) > 1 {
		names := make([]string, 0, len(nc.EndpointsConfig))
		for k := range nc.EndpointsConfig {
			names = append(names, k)
		}
		sort.Strings(names)
		return nil, fmt.Errorf("Container cannot be connected to network endpoints: %s: %w", strings.Join(names, ", "), errdefs.ErrInvalidArgument) //nolint:staticcheck // dockerd's wording
	}
	mode := string(hc.NetworkMode)
	if mode == "" || mode == "default" {
		mode = network.DefaultNetwork
	}
	var key string
	var es *nettypes.EndpointSettings
	for k, v := range nc.EndpointsConfig {
		key, es = k, v
	}
	bad := func(format string, a ...any) error {
		return fmt.Errorf("invalid config for network %s: %s: %w", key, fmt.Sprintf(format, a...), errdefs.ErrInvalidArgument)
	}
	if es == nil {
		return nil, bad("EndpointsConfig is nil")
	}
	if k := key; k != mode && !(k == "default" && mode == network.DefaultNetwork) && !same(k, mode) {
		return nil, bad("the container's network mode is %s; connect it to other networks with network connect", mode)
	}
	m := container.NetworkMode(mode)
	userDefined := m.IsUserDefined()
	ipam := es.IPAMConfig
	if ipam == nil {
		ipam = &nettypes.EndpointIPAMConfig{}
	}
	if (ipam.IPv4Address.IsValid() || ipam.IPv6Address.IsValid()) && !userDefined {
		return nil, bad("user specified IP address is supported on user defined networks only")
	}
	if len(es.Aliases) > 0 && !userDefined {
		return nil, bad("network-scoped alias is supported only for containers in user defined networks")
	}
	if len(es.MacAddress) > 0 && (m.IsContainer() || m.IsHost() || m.IsNone()) {
		return nil, bad("conflicting options: mac-address and the network mode")
	}
	if a := ipam.IPv4Address; a.IsValid() && (!a.Is4() || a.IsUnspecified()) {
		return nil, bad("invalid IPv4 address: %s", a)
	}
	if a := ipam.IPv6Address; a.IsValid() && (!a.Is6() || a.Is4In6() || a.IsUnspecified()) {
		return nil, bad("invalid IPv6 address: %s", a)
	}
	if len(ipam.LinkLocalIPs) > 0 {
		return nil, bad("link-local addresses are not supported")
	}
	if len(es.DriverOpts) > 0 {
		return nil, bad("endpoint driver options are not supported")
	}
	if slices.Contains(es.Aliases, "") {
		return nil, bad("an empty network alias is not a DNS name")
	}
	// Only what the engine configures is kept: Links arrive in
	// HostConfig.Links too, and the run-time fields (IDs, addresses got)
	// are the network record's.
	kept := &nettypes.EndpointSettings{Aliases: es.Aliases, MacAddress: es.MacAddress}
	if ipam.IPv4Address.IsValid() || ipam.IPv6Address.IsValid() {
		kept.IPAMConfig = &nettypes.EndpointIPAMConfig{IPv4Address: ipam.IPv4Address, IPv6Address: ipam.IPv6Address}
	}
	return map[string]*nettypes.EndpointSettings{mode: kept}, nil
}
