package engine

// Networking: the engine's side of internal/network. A container's network
// configuration is its HostConfig.NetworkMode (plus the create request's
// endpoint settings, Container.Endpoints) and later `network connect/disconnect`s, kept in
// <root>/containers/<id>/network.json with what each attachment got.
// Start calls setupNetwork (namespace, attachments through the network
// store's native driver or CNI, hosts/hostname/resolv.conf, DNS records)
// and puts the returned path into the spec; stop, rm and crash recovery
// call teardownNetwork, which works from the store's attachment records
// (native records, the CNI result cache) and is idempotent.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/network"
	"github.com/moby/moby/api/types/container"
	nettypes "github.com/moby/moby/api/types/network"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Labels that carried the primary network's endpoint settings in records
// made by builds before the create request carried Docker's
// NetworkingConfig. Nothing writes them any more; readNetRecord still reads
// them for containers created by those builds and not yet started (a
// started one has network.json), so an upgrade does not lose their
// --ip/--network-alias/--mac-address.
const (
	legacyLabelNetworkIP      = "berth.network.ip"
	legacyLabelNetworkAliases = "berth.network.aliases" // comma-separated
	legacyLabelNetworkMAC     = "berth.network.mac"
)

// netEndpoint is one network a container is configured on, and what its
// attachment got while running.
type netEndpoint struct {
	Aliases []string `json:",omitempty"`
	// IP is the static address asked for: IPv4, or IPv6 when that is the
	// only one (as records made before IP6 have it); IP6 is the static
	// IPv6 address beside a static IPv4 one. statics() sorts them out.
	IP  netip.Addr `json:",omitzero"`
	IP6 netip.Addr `json:",omitzero"`
	MAC string     `json:",omitempty"`
	// Order keeps interfaces stable: eth<Order> in connect order.
	Order  int
	Result *network.Result `json:",omitempty"`
}

// statics are the endpoint's static IPv4 and IPv6 addresses.
func (ep *netEndpoint) statics() (v4, v6 netip.Addr) {
	if ep.IP.Is6() && !ep.IP.Is4In6() {
		return netip.Addr{}, ep.IP
	}
	return ep.IP.Unmap(), ep.IP6
}

// setStatics records static addresses in the endpoint's two fields.
func (ep *netEndpoint) setStatics(v4, v6 netip.Addr) {
	ep.IP, ep.IP6 = v4, v6
	if !v4.IsValid() {
		ep.IP, ep.IP6 = v6, netip.Addr{}
	}
}

// netRecord is <root>/containers/<id>/network.json.
type netRecord struct {
	Endpoints map[string]*netEndpoint
	// SandboxKey is the namespace path while the container runs.
	SandboxKey string `json:",omitempty"`
	// Attaching is written before CNI ADD runs and cleared by teardown: a
	// record that still says so after a crash may have attachments that
	// the store never recorded.
	Attaching bool `json:",omitempty"`
	// stored says the record was read from network.json rather than built
	// from the container's configuration.
	stored bool
}

func (e *Engine) netRecordPath(id string) string {
	return filepath.Join(e.recordDir(id), "network.json")
}

// networks opens the network store.
func (e *Engine) networks() (*network.Store, error) {
	return network.Open(network.Options{Root: e.opts.Root, State: e.opts.State, DefaultRoot: DefaultRoot})
}

// netnsPath is where a container's namespace is mounted.
func (e *Engine) netnsPath(id string) string { return filepath.Join(e.opts.State, "netns", id) }

// netMode is the container's network mode with Docker's default spelled out.
func netMode(c *Container) string {
	m := string(c.HostConfig.NetworkMode)
	if m == "" || m == "default" {
		return network.DefaultNetwork
	}
	return m
}

// usesCNI reports whether the container gets its own namespace with
// network attachments (bridge and user-defined networks).
func usesCNI(c *Container) bool {
	m := netMode(c)
	return m != "none" && m != "host" && !strings.HasPrefix(m, "container:")
}

// lockNetRecord serializes changes of one container's network record
// (Start holds the container lock; connect may run beside it).
func (e *Engine) lockNetRecord(id string) (func(), error) {
	return lockPath(filepath.Join(e.recordDir(id), "network.lock"))
}

// readNetRecord reads the record, or builds it from the container's
// configuration when there is none yet.
func (e *Engine) readNetRecord(c *Container) (*netRecord, error) {
	b, err := os.ReadFile(e.netRecordPath(c.ID))
	if err == nil {
		var r netRecord
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("network record of %s: %w", c.Name, err)
		}
		if r.Endpoints == nil {
			r.Endpoints = map[string]*netEndpoint{}
		}
		r.stored = true
		return &r, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	r := &netRecord{Endpoints: map[string]*netEndpoint{}}
	if !usesCNI(c) {
		return r, nil
	}
	mode := netMode(c)
	// The networks a create request named beside the mode's (API 1.44)
	// follow it, by name: eth1, eth2, ... as `network connect` would have
	// made them in that order.
	var others []string
	for name := range c.Endpoints {
		if name != mode {
			others = append(others, name)
		}
	}
	sort.Strings(others)
	for i, name := range others {
		ep := endpointFromSettings(c.Endpoints[name])
		ep.Order = i + 1
		r.Endpoints[name] = ep
	}
	if es := c.Endpoints[mode]; es != nil {
		r.Endpoints[mode] = endpointFromSettings(es)
		return r, nil
	}
	// A record from a build that passed the settings as labels.
	ep := &netEndpoint{MAC: c.Config.Labels[legacyLabelNetworkMAC]}
	if v := c.Config.Labels[legacyLabelNetworkIP]; v != "" {
		ip, err := netip.ParseAddr(v)
		if err != nil {
			return nil, fmt.Errorf("invalid --ip %q: %w", v, errdefs.ErrInvalidArgument)
		}
		ep.IP = ip
	}
	if v := c.Config.Labels[legacyLabelNetworkAliases]; v != "" {
		ep.Aliases = strings.Split(v, ",")
	}
	r.Endpoints[mode] = ep
	return r, nil
}

// endpointFromSettings is the record's endpoint for a create request's
// validated settings (createEndpoints keeps only what it configures).
func endpointFromSettings(es *nettypes.EndpointSettings) *netEndpoint {
	ep := &netEndpoint{}
	if es == nil {
		return ep
	}
	ep.Aliases = es.Aliases
	if es.IPAMConfig != nil {
		ep.setStatics(es.IPAMConfig.IPv4Address, es.IPAMConfig.IPv6Address)
	}
	if len(es.MacAddress) > 0 {
		ep.MAC = es.MacAddress.String()
	}
	return ep
}

// writeNetRecord replaces the record durably: connect and disconnect
// change the container's configuration.
func (e *Engine) writeNetRecord(id string, r *netRecord) error {
	return e.putNetRecord(id, r, true)
}

// writeNetRunState replaces the record without an fsync, for what start
// and teardown change (Attaching, results, SandboxKey): run-time state
// that a power cut makes moot with the namespaces it describes, while a
// crash of the process still sees the rename. Each fsync costs about a
// millisecond, and a run writes the record three times.
func (e *Engine) writeNetRunState(id string, r *netRecord) error {
	return e.putNetRecord(id, r, false)
}

func (e *Engine) putNetRecord(id string, r *netRecord, durable bool) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return replaceFile(e.netRecordPath(id), b, 0o600, durable)
}

// sortedEndpoints returns network names in interface order.
func (r *netRecord) sortedEndpoints() []string {
	names := make([]string, 0, len(r.Endpoints))
	for n := range r.Endpoints {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		a, b := r.Endpoints[names[i]], r.Endpoints[names[j]]
		if a.Order != b.Order {
			return a.Order < b.Order
		}
		return names[i] < names[j]
	})
	return names
}

// dnsExe is the binary that serves a network's DNS (`berth network
// dns-serve`): $BERTH_DNS_BINARY, this executable when it is berth, else
// berth beside it or on $PATH.
func dnsExe() string {
	if v := os.Getenv("BERTH_DNS_BINARY"); v != "" {
		return v
	}
	if exe, err := os.Executable(); err == nil && filepath.Base(exe) == "berth" {
		return exe
	}
	return findBinary("berth")
}

// containerPorts turns HostConfig.PortBindings (and -P's exposed ports)
// into port mappings.
func containerPorts(c *Container) ([]network.PortMapping, error) {
	var out []network.PortMapping
	seen := map[nettypes.Port]bool{}
	for p, binds := range c.HostConfig.PortBindings {
		seen[p] = true
		for _, b := range binds {
			m := network.PortMapping{ContainerPort: p.Num(), Protocol: string(p.Proto())}
			if b.HostIP.IsValid() && !b.HostIP.IsUnspecified() {
				m.HostIP = b.HostIP.String()
			}
			if b.HostPort != "" {
				n, err := strconv.ParseUint(b.HostPort, 10, 16)
				if err != nil {
					return nil, fmt.Errorf("invalid host port %q: %w", b.HostPort, errdefs.ErrInvalidArgument)
				}
				m.HostPort = uint16(n)
			}
			out = append(out, m)
		}
	}
	if c.HostConfig.PublishAllPorts {
		for p := range c.Config.ExposedPorts {
			if !seen[p] {
				out = append(out, network.PortMapping{ContainerPort: p.Num(), Protocol: string(p.Proto())})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ContainerPort < out[j].ContainerPort })
	return out, nil
}

// setupNetwork prepares c's network before its start and returns the
// network namespace path for the spec: "" for none (the runtime makes a
// new, empty namespace) and host (the host's: the spec must not ask for a
// namespace, see applyNetworkNamespace), the other container's for
// container:NAME, a new one with CNI attachments otherwise. It also
// writes hosts, hostname and resolv.conf into the bundle (networkMounts).
// On failure nothing is left attached.
func (e *Engine) setupNetwork(ctx context.Context, c *Container) (_ string, retErr error) {
	mode := netMode(c)
	bundle := e.bundleDir(c.ID)
	if err := os.MkdirAll(bundle, 0o711); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(bundle, "hostname"), []byte(c.Config.Hostname+"\n"), 0o644); err != nil {
		return "", err
	}
	hostResolv, _ := os.ReadFile("/etc/resolv.conf")
	switch {
	case mode == "host":
		hosts, _ := os.ReadFile("/etc/hosts")
		if err := e.writeNetFiles(c, hosts, hostResolv); err != nil {
			return "", err
		}
		return "", nil
	case strings.HasPrefix(mode, "container:"):
		other, err := e.lookupContainer(strings.TrimPrefix(mode, "container:"))
		if err != nil {
			return "", err
		}
		st := e.state(other)
		if !st.Running() {
			return "", fmt.Errorf("cannot join network of a non running container: %s: %w", other.Name, errdefs.ErrConflict)
		}
		path := e.netnsPath(other.ID)
		if !network.IsNetNS(path) {
			path = fmt.Sprintf("/proc/%d/ns/net", st.Pid)
		}
		// The joined container's files describe the shared namespace.
		for _, f := range []string{"hosts", "resolv.conf"} {
			b, err := os.ReadFile(filepath.Join(e.bundleDir(other.ID), f))
			if err != nil {
				b = nil
			}
			if err := os.WriteFile(filepath.Join(bundle, f), b, 0o644); err != nil {
				return "", err
			}
		}
		return path, nil
	case mode == "none":
		return "", e.writeNetFiles(c, hostsFor(c, nil, nil), network.ResolvConf(hostResolv, dnsList(c), c.HostConfig.DNSSearch, c.HostConfig.DNSOptions))
	}
	store, err := e.networks()
	if err != nil {
		return "", err
	}
	unlock, err := e.lockNetRecord(c.ID)
	if err != nil {
		return "", err
	}
	defer unlock()
	rec, err := e.readNetRecord(c)
	if err != nil {
		return "", err
	}
	// A previous run that crashed may have left attachments; a container
	// starting for the first time (no record yet) has none.
	if rec.stored {
		_ = e.teardownLocked(ctx, c, store, rec)
	}
	nsPath := e.netnsPath(c.ID)
	rec.Attaching = true
	if err := e.writeNetRunState(c.ID, rec); err != nil {
		return "", err
	}
	if err := network.NewNetNS(nsPath); err != nil {
		return "", fmt.Errorf("network namespace of %s: %w", c.Name, err)
	}
	defer func() {
		if retErr != nil {
			_ = e.teardownLocked(context.WithoutCancel(ctx), c, store, rec)
			_ = e.writeNetRunState(c.ID, rec)
		}
	}()
	ports, err := containerPorts(c)
	if err != nil {
		return "", err
	}
	var own []netip.Addr
	var nameservers []string
	var gateway netip.Addr
	for i, name := range rec.sortedEndpoints() {
		ep := rec.Endpoints[name]
		n, err := store.Get(name)
		if err != nil {
			return "", err
		}
		a := network.Attachment{ContainerID: c.ID, NetNS: nsPath, IfName: "eth" + strconv.Itoa(i), MAC: ep.MAC}
		a.IPv4, a.IPv6 = ep.statics()
		if i == 0 {
			a.Ports = ports
		}
		res, err := store.Attach(ctx, n, a)
		if err != nil {
			return "", err
		}
		ep.Result = res
		if res.IPv4.IsValid() {
			own = append(own, res.IPv4.Addr())
		}
		if i == 0 {
			gateway = res.Gateway
		}
		if n.DNS {
			if err := e.publishRecord(store, n, c, ep); err != nil {
				return "", err
			}
			if len(nameservers) == 0 {
				nameservers = []string{n.Gateway.String()}
			}
		}
	}
	rec.SandboxKey = nsPath
	if err := e.writeNetRunState(c.ID, rec); err != nil {
		return "", err
	}
	if d := dnsList(c); len(d) > 0 {
		nameservers = d
	}
	extra, err := extraHosts(c, gateway)
	if err != nil {
		return "", err
	}
	if err := e.writeNetFiles(c, hostsFor(c, own, extra), network.ResolvConf(hostResolv, nameservers, c.HostConfig.DNSSearch, c.HostConfig.DNSOptions)); err != nil {
		return "", err
	}
	return nsPath, nil
}

// publishRecord adds c's DNS record on n and makes sure n's DNS server
// runs. The record's aliases are every DNS name but the container's name
// (which the record carries): the hostname resolves as with dockerd, and
// the short ID as any 12-digit prefix of the ID does.
func (e *Engine) publishRecord(store *network.Store, n *network.Network, c *Container, ep *netEndpoint) error {
	r := network.Record{ID: c.ID, Name: c.Name, Aliases: slices.DeleteFunc(dnsNames(c, ep.Aliases), func(s string) bool { return s == c.Name || s == shortID(c.ID) })}
	if ep.Result != nil {
		r.IPv4, r.IPv6 = ep.Result.IPv4.Addr(), ep.Result.IPv6.Addr()
	}
	if _, err := store.AddRecord(n.Name, r); err != nil {
		return err
	}
	return store.EnsureDNS(n, dnsExe())
}

func dnsList(c *Container) []string {
	var out []string
	for _, a := range c.HostConfig.DNS {
		out = append(out, a.String())
	}
	return out
}

func extraHosts(c *Container, gateway netip.Addr) ([]network.HostEntry, error) {
	var out []network.HostEntry
	for _, h := range c.HostConfig.ExtraHosts {
		he, err := network.ParseExtraHost(h, gateway)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", err, errdefs.ErrInvalidArgument)
		}
		out = append(out, he)
	}
	return out, nil
}

func hostsFor(c *Container, own []netip.Addr, extra []network.HostEntry) []byte {
	return network.HostsFile(c.Config.Hostname, c.Config.Domainname, own, extra)
}

func (e *Engine) writeNetFiles(c *Container, hosts, resolv []byte) error {
	bundle := e.bundleDir(c.ID)
	if err := os.WriteFile(filepath.Join(bundle, "hosts"), hosts, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(bundle, "resolv.conf"), resolv, 0o644)
}

// networkMounts bind-mounts the files setupNetwork wrote over the image's
// /etc/hosts, /etc/hostname and /etc/resolv.conf (those that exist).
func (e *Engine) networkMounts(c *Container) []specs.Mount {
	var out []specs.Mount
	for _, f := range []string{"hosts", "hostname", "resolv.conf"} {
		src := filepath.Join(e.bundleDir(c.ID), f)
		if _, err := os.Stat(src); err != nil {
			continue
		}
		out = append(out, specs.Mount{Destination: "/etc/" + f, Type: "bind", Source: src,
			Options: []string{"rbind", "rprivate", "nosuid", "nodev", "noexec"}})
	}
	return out
}

// applyNetworkNamespace sets the spec's network namespace for netnsPath as
// setupNetwork returned it: the host's (no namespace entry) for host mode,
// a new one for "", or joining the path.
func applyNetworkNamespace(s *specs.Spec, c *Container, netnsPath string) {
	var ns []specs.LinuxNamespace
	for _, n := range s.Linux.Namespaces {
		if n.Type != specs.NetworkNamespace {
			ns = append(ns, n)
		}
	}
	if netMode(c) != "host" {
		ns = append(ns, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: netnsPath})
	}
	s.Linux.Namespaces = ns
}

// teardownNetwork undoes setupNetwork: every attachment detached (from
// the store's attachment records, so it also works after a crash of
// whoever started the container), DNS records withdrawn, the namespace
// unmounted. Safe to call for any container, any number of times.
func (e *Engine) teardownNetwork(ctx context.Context, c *Container) error {
	store, err := e.networks()
	if err != nil {
		return err
	}
	unlock, err := e.lockNetRecord(c.ID)
	if err != nil {
		if _, serr := os.Stat(e.recordDir(c.ID)); serr != nil {
			// The record is gone: tear down from the cache alone.
			return e.teardownLocked(ctx, c, store, &netRecord{Endpoints: map[string]*netEndpoint{}})
		}
		return err
	}
	defer unlock()
	rec, err := e.readNetRecord(c)
	if err != nil {
		rec = &netRecord{Endpoints: map[string]*netEndpoint{}}
	}
	terr := e.teardownLocked(ctx, c, store, rec)
	if werr := e.writeNetRunState(c.ID, rec); werr != nil && terr == nil && !errors.Is(werr, os.ErrNotExist) {
		terr = werr
	}
	return terr
}

func (e *Engine) teardownLocked(ctx context.Context, c *Container, store *network.Store, rec *netRecord) error {
	var errs []error
	nsPath := e.netnsPath(c.ID)
	nsGone := !network.IsNetNS(nsPath)
	atts, _ := store.Attachments(c.ID)
	// The namespace is removed below, taking the native driver's veths.
	if err := store.DetachAll(ctx, c.ID); err != nil {
		errs = append(errs, err)
	}
	// An attachment the record names but the CNI cache lacks is an ADD
	// whose caller was killed while the plugins ran: DEL it blindly.
	cached := map[string]bool{}
	for _, a := range atts {
		cached[a.Network] = true
	}
	uncached := false
	for i, name := range rec.sortedEndpoints() {
		if cached[name] || !rec.Attaching {
			continue
		}
		n, err := store.Get(name)
		if err != nil {
			continue // the network is gone, and with it what DEL could find
		}
		var ports []network.PortMapping
		if i == 0 {
			ports, _ = containerPorts(c)
		}
		if err := store.DetachUncached(ctx, n, c.ID, "eth"+strconv.Itoa(i), nsPath, ports); err != nil {
			errs = append(errs, err)
		}
		uncached = true
	}
	if uncached || (nsGone && len(atts) > 0) {
		// Without the namespace the bridge plugin cannot find the
		// addresses its masquerade rules were made for.
		_ = network.SweepContainerRules(c.ID)
	}
	nets := map[string]bool{}
	for _, a := range atts {
		nets[a.Network] = true
	}
	for name, ep := range rec.Endpoints {
		nets[name] = true
		ep.Result = nil
	}
	for name := range nets {
		if left, err := store.RemoveRecord(name, c.ID); err == nil && left == 0 {
			_ = store.StopDNSIfIdle(name)
		}
	}
	if err := network.RemoveNetNS(nsPath); err != nil {
		errs = append(errs, err)
	}
	rec.SandboxKey = ""
	if len(errs) == 0 {
		rec.Attaching = false
	}
	return errors.Join(errs...)
}

// networkSettings is inspect's NetworkSettings for c.
func (e *Engine) networkSettings(c *Container) *container.NetworkSettings {
	ns := &container.NetworkSettings{Ports: nettypes.PortMap{}, Networks: map[string]*nettypes.EndpointSettings{}}
	for p := range c.Config.ExposedPorts {
		ns.Ports[p] = nil
	}
	rec, err := e.readNetRecord(c)
	if err != nil {
		return ns
	}
	if !usesCNI(c) {
		ns.Networks[netMode(c)] = &nettypes.EndpointSettings{}
		return ns
	}
	ns.SandboxKey = rec.SandboxKey
	if rec.SandboxKey != "" {
		ns.SandboxID = c.ID
	}
	store, _ := e.networks()
	for name, ep := range rec.Endpoints {
		es := &nettypes.EndpointSettings{Aliases: ep.Aliases}
		if container.NetworkMode(name).IsUserDefined() {
			es.DNSNames = dnsNames(c, ep.Aliases)
		}
		if store != nil {
			if n, err := store.Get(name); err == nil {
				es.NetworkID = n.ID
			}
		}
		if v4, v6 := ep.statics(); v4.IsValid() || v6.IsValid() {
			es.IPAMConfig = &nettypes.EndpointIPAMConfig{IPv4Address: v4, IPv6Address: v6}
		}
		if hw, err := net.ParseMAC(ep.MAC); err == nil {
			// The configured address until an attachment reports its own.
			es.MacAddress = nettypes.HardwareAddr(hw)
		}
		if r := ep.Result; r != nil {
			es.EndpointID = c.ID + "-" + r.IfName
			es.IPAddress, es.IPPrefixLen, es.Gateway = r.IPv4.Addr(), r.IPv4.Bits(), r.Gateway
			if r.IPv6.IsValid() {
				es.GlobalIPv6Address, es.GlobalIPv6PrefixLen, es.IPv6Gateway = r.IPv6.Addr(), r.IPv6.Bits(), r.Gateway6
			}
			if hw, err := net.ParseMAC(r.MAC); err == nil {
				es.MacAddress = nettypes.HardwareAddr(hw)
			}
			for _, p := range r.Ports {
				port, ok := nettypes.PortFrom(p.ContainerPort, nettypes.IPProtocol(p.Protocol))
				if !ok {
					continue
				}
				hostIP := netip.IPv4Unspecified()
				if a, err := netip.ParseAddr(p.HostIP); err == nil {
					hostIP = a
				}
				ns.Ports[port] = append(ns.Ports[port], nettypes.PortBinding{HostIP: hostIP, HostPort: strconv.Itoa(int(p.HostPort))})
			}
		}
		ns.Networks[name] = es
	}
	return ns
}

// lockPath takes an exclusive cross-process lock on path (which must be
// in an existing directory: a removed container has nothing to lock).
func lockPath(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, &os.PathError{Op: "flock", Path: path, Err: err}
	}
	return func() { f.Close() }, nil
}
