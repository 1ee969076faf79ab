package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/berth-dev/berth/internal/client"
	"github.com/berth-dev/berth/internal/engine"
	"github.com/berth-dev/berth/internal/network"
	"github.com/moby/moby/api/types/container"
	nettypes "github.com/moby/moby/api/types/network"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// networkBackend is what the network commands need from the engine. It is
// asserted on whatever a.engine() returns, so these commands keep working
// while the CLI moves to its Backend interface; the HTTP client is adapted
// (remoteNetworks) and any other backend gets a clear error.
type networkBackend interface {
	NetworkCreate(ctx context.Context, name string, o engine.NetworkCreateOptions) (nettypes.CreateResponse, error)
	NetworkList(ctx context.Context, f engine.NetworkFilters) ([]nettypes.Inspect, error)
	NetworkInspect(ctx context.Context, ref string) (nettypes.Inspect, error)
	NetworkRemove(ctx context.Context, ref string) error
	NetworkPrune(ctx context.Context, f engine.NetworkFilters) ([]string, error)
	NetworkConnect(ctx context.Context, net, ctr string, o engine.NetworkConnectOptions) error
	NetworkDisconnect(ctx context.Context, net, ctr string, force bool) error
}

func (a *app) networks() (networkBackend, error) {
	e, err := a.engine()
	if err != nil {
		return nil, err
	}
	if c, ok := e.(*client.Client); ok {
		return remoteNetworks{c}, nil
	}
	nb, ok := any(e).(networkBackend)
	if !ok {
		return nil, errors.New("networks are not supported by this backend")
	}
	return nb, nil
}

// remoteNetworks is berthd's networks through the HTTP client. Its connect
// speaks Docker's endpoint settings, which the client cannot take as the
// engine's options type (it may not import the engine).
type remoteNetworks struct{ *client.Client }

var _ networkBackend = remoteNetworks{}

func (r remoteNetworks) NetworkConnect(ctx context.Context, net, ctr string, o engine.NetworkConnectOptions) error {
	es := &nettypes.EndpointSettings{Aliases: o.Aliases}
	if o.IP.IsValid() || o.IPv6.IsValid() {
		// IP is IPv4, or IPv6 when it is the only static address.
		es.IPAMConfig = &nettypes.EndpointIPAMConfig{IPv4Address: o.IP, IPv6Address: o.IPv6}
		if o.IP.Is6() && !o.IP.Is4In6() && !o.IPv6.IsValid() {
			es.IPAMConfig.IPv4Address, es.IPAMConfig.IPv6Address = netip.Addr{}, o.IP
		}
	}
	return r.Client.NetworkConnect(ctx, net, ctr, es)
}

// newNetwork is `berth network`: create, ls, inspect, rm, prune, connect,
// disconnect, and the hidden dns-serve (a network's DNS server process).
func newNetwork(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "network COMMAND",
		Short: "Manage networks",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	c.AddCommand(newNetworkCreate(a), newNetworkLs(a), newNetworkInspect(a), newNetworkRm(a),
		newNetworkPrune(a), newNetworkConnect(a), newNetworkDisconnect(a), newNetworkDNSServe())
	return c
}

func newNetworkCreate(a *app) *cobra.Command {
	var o engine.NetworkCreateOptions
	var opts, labels, subnets, gateways []string
	c := &cobra.Command{
		Use:   "create [OPTIONS] NETWORK",
		Short: "Create a network",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Options, o.Labels = keyValues(opts), keyValues(labels)
			// As Docker: one --subnet (and --gateway) per address family,
			// an IPv6 one implying --ipv6.
			for _, v := range subnets {
				if p, err := netip.ParsePrefix(v); err == nil && p.Addr().Is6() {
					o.Subnet6, o.IPv6 = v, true
				} else {
					o.Subnet = v
				}
			}
			for _, v := range gateways {
				if a, err := netip.ParseAddr(v); err == nil && a.Is6() {
					o.Gateway6 = v
				} else {
					o.Gateway = v
				}
			}
			nb, err := a.networks()
			if err != nil {
				return err
			}
			r, err := nb.NetworkCreate(cmd.Context(), args[0], o)
			if err != nil {
				return err
			}
			fmt.Fprintln(a.stdout, r.ID)
			return nil
		},
	}
	fl := c.Flags()
	fl.StringVarP(&o.Driver, "driver", "d", "bridge", "driver to manage the network")
	fl.StringArrayVar(&subnets, "subnet", nil, "subnet in CIDR format, one per address family (an IPv6 subnet implies --ipv6)")
	fl.StringArrayVar(&gateways, "gateway", nil, "gateway for the subnet of its address family")
	fl.StringVar(&o.IPRange, "ip-range", "", "allocate container IPs from a sub-range")
	fl.BoolVar(&o.Internal, "internal", false, "restrict external access to the network")
	fl.BoolVar(&o.IPv6, "ipv6", false, "enable IPv6 networking")
	fl.StringArrayVarP(&opts, "opt", "o", nil, "set driver specific options")
	fl.StringArrayVar(&labels, "label", nil, "set metadata on a network")
	return c
}

// networkRow is what `network ls --format` templates see.
type networkRow struct {
	ID, Name, Driver, Scope, IPv6, Internal, Labels, CreatedAt string
}

func newNetworkLs(a *app) *cobra.Command {
	var quiet, noTrunc bool
	var format string
	var filters []string
	c := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List networks",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			flt, err := engine.ParseNetworkFilters(filters)
			if err != nil {
				return withCode(125, err)
			}
			nb, err := a.networks()
			if err != nil {
				return err
			}
			nets, err := nb.NetworkList(cmd.Context(), flt)
			if err != nil {
				return err
			}
			var rows []networkRow
			for _, n := range nets {
				id := n.ID
				if !noTrunc {
					id = id[:min(12, len(id))]
				}
				var ls []string
				for k, v := range n.Labels {
					ls = append(ls, k+"="+v)
				}
				rows = append(rows, networkRow{ID: id, Name: n.Name, Driver: n.Driver, Scope: n.Scope,
					IPv6: strconv.FormatBool(n.EnableIPv6), Internal: strconv.FormatBool(n.Internal),
					Labels: strings.Join(ls, ","), CreatedAt: n.Created.String()})
			}
			if quiet {
				for _, r := range rows {
					fmt.Fprintln(a.stdout, r.ID)
				}
				return nil
			}
			if format == "" || format == "table" {
				tw := tabwriter.NewWriter(a.stdout, 10, 1, 3, ' ', 0)
				fmt.Fprintln(tw, "NETWORK ID\tNAME\tDRIVER\tSCOPE")
				for _, r := range rows {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.ID, r.Name, r.Driver, r.Scope)
				}
				return tw.Flush()
			}
			f, err := newFormatter(a.stdout, format, "")
			if err != nil {
				return err
			}
			for _, r := range rows {
				if err := f.Row(r); err != nil {
					return err
				}
			}
			return f.Flush()
		},
	}
	fl := c.Flags()
	fl.BoolVarP(&quiet, "quiet", "q", false, "only display network IDs")
	fl.BoolVar(&noTrunc, "no-trunc", false, "do not truncate the output")
	fl.StringVar(&format, "format", "", "format output using a Go template, or json")
	fl.StringArrayVarP(&filters, "filter", "f", nil, "filter output (name=, id=, driver=, scope=, label=, type=custom|builtin, dangling=)")
	return c
}

func newNetworkInspect(a *app) *cobra.Command {
	var format string
	c := &cobra.Command{
		Use:   "inspect [OPTIONS] NETWORK [NETWORK...]",
		Short: "Display detailed information on one or more networks",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			nb, err := a.networks()
			if err != nil {
				return err
			}
			var out []any
			var failed error
			for _, name := range args {
				n, err := nb.NetworkInspect(cmd.Context(), name)
				if err != nil {
					fmt.Fprintln(a.stderr, "Error response from daemon:", describe(err))
					failed = withCode(1, nil)
					continue
				}
				out = append(out, n)
			}
			if format != "" && format != "json" {
				f, err := newFormatter(a.stdout, format, "")
				if err != nil {
					return err
				}
				for _, n := range out {
					if err := f.Row(n); err != nil {
						return err
					}
				}
				return errors.Join(f.Flush(), failed)
			}
			if out == nil {
				out = []any{}
			}
			b, err := json.MarshalIndent(out, "", "    ")
			if err != nil {
				return err
			}
			fmt.Fprintln(a.stdout, string(b))
			return failed
		},
	}
	c.Flags().StringVarP(&format, "format", "f", "", "format output using a Go template")
	return c
}

func newNetworkRm(a *app) *cobra.Command {
	var force bool
	c := &cobra.Command{
		Use:     "rm NETWORK [NETWORK...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more networks",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			nb, err := a.networks()
			if err != nil {
				return err
			}
			var failed error
			for _, name := range args {
				if err := nb.NetworkRemove(cmd.Context(), name); err != nil {
					if force && strings.Contains(err.Error(), "not found") {
						continue
					}
					fmt.Fprintln(a.stderr, "Error response from daemon:", describe(err))
					failed = withCode(1, nil)
					continue
				}
				fmt.Fprintln(a.stdout, name)
			}
			return failed
		},
	}
	c.Flags().BoolVarP(&force, "force", "f", false, "do not error if the network does not exist")
	return c
}

func newNetworkPrune(a *app) *cobra.Command {
	var force bool
	var filters []string
	c := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove all unused networks",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := engine.ParseNetworkFilters(filters)
			if err != nil {
				return withCode(125, err)
			}
			if !force && !confirm(a, "WARNING! This will remove all custom networks not used by at least one container.") {
				return nil
			}
			nb, err := a.networks()
			if err != nil {
				return err
			}
			names, err := nb.NetworkPrune(cmd.Context(), f)
			printDeleted(a.stdout, "Networks", names)
			return err
		},
	}
	c.Flags().BoolVarP(&force, "force", "f", false, "do not prompt for confirmation")
	c.Flags().StringArrayVar(&filters, "filter", nil, "provide filter values (e.g. \"until=<timestamp>\", \"label=key=value\", \"label!=key\")")
	return c
}

func newNetworkConnect(a *app) *cobra.Command {
	var aliases []string
	var ip, ip6 string
	c := &cobra.Command{
		Use:   "connect [OPTIONS] NETWORK CONTAINER",
		Short: "Connect a container to a network",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			o := engine.NetworkConnectOptions{Aliases: aliases}
			if ip != "" {
				addr, err := netip.ParseAddr(ip)
				if err != nil {
					return withCode(125, fmt.Errorf("invalid IP address %q", ip))
				}
				o.IP = addr
			}
			if ip6 != "" {
				addr, err := netip.ParseAddr(ip6)
				if err != nil || !addr.Is6() || addr.Is4In6() {
					return withCode(125, fmt.Errorf("invalid IPv6 address %q", ip6))
				}
				o.IPv6 = addr
			}
			nb, err := a.networks()
			if err != nil {
				return err
			}
			return nb.NetworkConnect(cmd.Context(), args[0], args[1], o)
		},
	}
	c.Flags().StringArrayVar(&aliases, "alias", nil, "add network-scoped alias for the container")
	c.Flags().StringVar(&ip, "ip", "", "IPv4 address (e.g., \"172.30.100.104\")")
	c.Flags().StringVar(&ip6, "ip6", "", "IPv6 address (e.g., \"2001:db8::33\")")
	return c
}

func newNetworkDisconnect(a *app) *cobra.Command {
	var force bool
	c := &cobra.Command{
		Use:   "disconnect [OPTIONS] NETWORK CONTAINER",
		Short: "Disconnect a container from a network",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			nb, err := a.networks()
			if err != nil {
				return err
			}
			return nb.NetworkDisconnect(cmd.Context(), args[0], args[1], force)
		},
	}
	c.Flags().BoolVarP(&force, "force", "f", false, "force the container to disconnect from a network")
	return c
}

// newNetworkDNSServe is the process that serves a network's DNS; the
// engine starts it (internal/network.DNSMain has the flags).
func newNetworkDNSServe() *cobra.Command {
	return &cobra.Command{
		Use:                network.DNSCommand[1],
		Hidden:             true,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return network.DNSMain(args)
		},
	}
}

// netFlags are the network flags of run and create.
type netFlags struct {
	publish    []string
	publishAll bool
	expose     []string
	networks   []string // --network, repeatable (the first is the mode)
	ip, ip6    string
	aliases    []string
	dns        []string
	dnsSearch  []string
	dnsOptions []string
	addHost    []string
	mac        string
}

// registerNetworkFlags adds the network flags to run's and create's flag set.
func registerNetworkFlags(fl *pflag.FlagSet, o *netFlags) {
	fl.StringArrayVarP(&o.publish, "publish", "p", nil, "publish a container's port(s) to the host ([ip:][hostport:]containerport[/proto])")
	fl.BoolVarP(&o.publishAll, "publish-all", "P", false, "publish all exposed ports to random ports")
	fl.StringArrayVar(&o.expose, "expose", nil, "expose a port or a range of ports")
	fl.StringArrayVar(&o.networks, "network", nil, "connect a container to a network (bridge, none, host, container:NAME, a network name, or name=NET,alias=A,ip=IP,mac-address=MAC); repeat for several")
	fl.StringArrayVar(&o.networks, "net", nil, "connect a container to a network")
	_ = fl.MarkHidden("net")
	fl.StringVar(&o.ip, "ip", "", "IPv4 address (e.g., 172.30.100.104)")
	fl.StringVar(&o.ip6, "ip6", "", "IPv6 address")
	fl.StringArrayVar(&o.aliases, "network-alias", nil, "add network-scoped alias for the container")
	fl.StringArrayVar(&o.dns, "dns", nil, "set custom DNS servers")
	fl.StringArrayVar(&o.dnsSearch, "dns-search", nil, "set custom DNS search domains")
	fl.StringArrayVar(&o.dnsOptions, "dns-option", nil, "set DNS options")
	fl.StringArrayVar(&o.addHost, "add-host", nil, "add a custom host-to-IP mapping (host:ip)")
	fl.StringVar(&o.mac, "mac-address", "", "container MAC address (e.g., 92:d0:c6:0a:29:33)")
}

// apply writes the flags into the create request. Endpoint settings (the
// first network's --ip, --ip6, --network-alias, --mac-address, and each
// --network's own) travel as Docker's NetworkingConfig keyed by the
// --network value, as the docker CLI sends them; the engine validates
// them against the networks.
func (o *netFlags) apply(co *engine.CreateOptions) error {
	cfg, hc := &co.Config, &co.HostConfig
	mode := ""
	if len(o.networks) > 0 {
		mode = o.networks[0]
		if a, err := parseNetAttachment(mode); err == nil {
			mode = a.target
		}
	}
	nm := container.NetworkMode(mode)
	shared := nm.IsHost() || nm.IsNone() || nm.IsContainer()
	if shared && (len(o.publish) > 0 || o.publishAll) && mode != "none" {
		return fmt.Errorf("conflicting options: port publishing and the container type network mode")
	}
	if nm.IsContainer() && (len(o.dns) > 0 || len(o.addHost) > 0 || o.mac != "") {
		return fmt.Errorf("conflicting options: dns, add-host and mac-address cannot be used with network mode container")
	}
	// The docker CLI refuses aliases on the built-in networks itself.
	if len(o.aliases) > 0 && (mode == "" || !nm.IsUserDefined()) {
		return fmt.Errorf("network-scoped aliases are only supported for user-defined networks")
	}
	mode, eps, err := o.endpointsConfig()
	if err != nil {
		return err
	}
	if mode != "" {
		hc.NetworkMode = container.NetworkMode(mode)
	}
	if len(eps) > 0 {
		co.NetworkingConfig = &nettypes.NetworkingConfig{EndpointsConfig: eps}
	}
	for _, d := range o.dns {
		a, err := netip.ParseAddr(d)
		if err != nil {
			return fmt.Errorf("%s is not an ip address", d)
		}
		hc.DNS = append(hc.DNS, a)
	}
	hc.DNSSearch = append(hc.DNSSearch, o.dnsSearch...)
	hc.DNSOptions = append(hc.DNSOptions, o.dnsOptions...)
	for _, h := range o.addHost {
		if _, err := network.ParseExtraHost(h, netip.MustParseAddr("127.0.0.1")); err != nil {
			return err
		}
		hc.ExtraHosts = append(hc.ExtraHosts, h)
	}
	hc.PublishAllPorts = hc.PublishAllPorts || o.publishAll
	for _, e := range o.expose {
		proto := "tcp"
		if p, pr, ok := strings.Cut(e, "/"); ok {
			e, proto = p, pr
		}
		ports, err := parsePortRange(e, proto)
		if err != nil {
			return fmt.Errorf("invalid range format for --expose: %s", e)
		}
		for _, p := range ports {
			if cfg.ExposedPorts == nil {
				cfg.ExposedPorts = nettypes.PortSet{}
			}
			cfg.ExposedPorts[p] = struct{}{}
		}
	}
	for _, s := range o.publish {
		m, err := parsePublish(s)
		if err != nil {
			return err
		}
		if hc.PortBindings == nil {
			hc.PortBindings = nettypes.PortMap{}
		}
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = nettypes.PortSet{}
		}
		for _, pb := range m {
			hc.PortBindings[pb.port] = append(hc.PortBindings[pb.port], pb.binding)
			cfg.ExposedPorts[pb.port] = struct{}{}
		}
	}
	return nil
}

func nettypesMAC(s string) (nettypes.HardwareAddr, error) {
	var hw nettypes.HardwareAddr
	err := hw.UnmarshalText([]byte(s))
	return hw, err
}

type portBinding struct {
	port    nettypes.Port
	binding nettypes.PortBinding
}

// parsePortRange parses "80" or "8000-8010" into ports of proto.
func parsePortRange(s, proto string) ([]nettypes.Port, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	a, err := strconv.ParseUint(lo, 10, 16)
	if err != nil || a == 0 {
		return nil, fmt.Errorf("invalid port %q", s)
	}
	b := a
	if isRange {
		if b, err = strconv.ParseUint(hi, 10, 16); err != nil || b < a {
			return nil, fmt.Errorf("invalid port range %q", s)
		}
	}
	var out []nettypes.Port
	for p := a; p <= b; p++ {
		port, ok := nettypes.PortFrom(uint16(p), nettypes.IPProtocol(proto))
		if !ok {
			return nil, fmt.Errorf("invalid port %q", s)
		}
		out = append(out, port)
	}
	return out, nil
}

// parsePublish parses -p's [ip:][hostport:]containerport[/proto] with
// ranges on either side (a host range must be as long as the container
// range, or a single port when the container side is one port).
func parsePublish(s string) ([]portBinding, error) {
	bad := func() error {
		return fmt.Errorf("invalid publish spec %q: want [ip:][hostport:]containerport[/proto]", s)
	}
	rest, proto := s, "tcp"
	if i := strings.LastIndex(rest, "/"); i >= 0 {
		rest, proto = rest[:i], strings.ToLower(rest[i+1:])
		if proto != "tcp" && proto != "udp" && proto != "sctp" {
			return nil, fmt.Errorf("invalid proto %q in %q", proto, s)
		}
	}
	var hostIP, hostPort, ctrPort string
	if strings.HasPrefix(rest, "[") {
		end := strings.Index(rest, "]")
		if end < 0 || len(rest) < end+2 || rest[end+1] != ':' {
			return nil, bad()
		}
		hostIP, rest = rest[1:end], rest[end+2:]
		var ok bool
		if hostPort, ctrPort, ok = strings.Cut(rest, ":"); !ok {
			return nil, bad()
		}
	} else {
		parts := strings.Split(rest, ":")
		switch len(parts) {
		case 1:
			ctrPort = parts[0]
		case 2:
			hostPort, ctrPort = parts[0], parts[1]
		case 3:
			hostIP, hostPort, ctrPort = parts[0], parts[1], parts[2]
		default:
			return nil, bad()
		}
	}
	var ip netip.Addr
	if hostIP != "" {
		var err error
		if ip, err = netip.ParseAddr(hostIP); err != nil {
			return nil, fmt.Errorf("invalid IP address %q in %q", hostIP, s)
		}
	}
	ctr, err := parsePortRange(ctrPort, proto)
	if err != nil {
		return nil, fmt.Errorf("invalid containerPort: %s", ctrPort)
	}
	var hosts []string
	if hostPort != "" {
		hp, err := parsePortRange(hostPort, proto)
		if err != nil {
			return nil, fmt.Errorf("invalid hostPort: %s", hostPort)
		}
		switch {
		case len(hp) == len(ctr):
			for _, p := range hp {
				hosts = append(hosts, strconv.Itoa(int(p.Num())))
			}
		case len(ctr) == 1:
			// Docker picks one free port of the host range; berth takes
			// the first, and a taken port is an error at start.
			hosts = []string{strconv.Itoa(int(hp[0].Num()))}
		default:
			return nil, fmt.Errorf("invalid ranges specified for container and host Ports: %s and %s", ctrPort, hostPort)
		}
	}
	out := make([]portBinding, 0, len(ctr))
	for i, p := range ctr {
		b := nettypes.PortBinding{HostIP: ip}
		if hosts != nil {
			b.HostPort = hosts[i]
		}
		out = append(out, portBinding{port: p, binding: b})
	}
	return out, nil
}
