package engine

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/network"
	nettypes "github.com/moby/moby/api/types/network"
)

// NetworkCreateOptions are `network create`'s flags.
type NetworkCreateOptions = network.CreateOptions

// NetworkConnectOptions are `network connect`'s flags.
type NetworkConnectOptions struct {
	Aliases []string
	// IP is a static address: IPv4, or IPv6 when it is the only one.
	IP netip.Addr
	// IPv6 is a static IPv6 address beside an IPv4 one in IP (--ip6).
	IPv6 netip.Addr
	// MAC is the interface's address on this network (API 1.44's
	// EndpointConfig.MacAddress); empty for one derived from the IPv4
	// address, as on create.
	MAC net.HardwareAddr
}

// statics sorts o's static addresses into their families.
func (o NetworkConnectOptions) statics() (v4, v6 netip.Addr, _ error) {
	switch {
	case o.IP.Is6() && !o.IP.Is4In6() && o.IPv6.IsValid():
		return netip.Addr{}, netip.Addr{}, fmt.Errorf("invalid IPv4 address: %s: %w", o.IP, errdefs.ErrInvalidArgument)
	case o.IP.Is6() && !o.IP.Is4In6():
		return netip.Addr{}, o.IP, nil
	}
	return o.IP.Unmap(), o.IPv6, nil
}

// apiNetwork renders n in Docker's shape, with the containers attached now.
func (e *Engine) apiNetwork(store *network.Store, n *network.Network) nettypes.Inspect {
	cfg := []nettypes.IPAMConfig{{Subnet: n.Subnet, Gateway: n.Gateway, IPRange: n.IPRange}}
	if n.Subnet6.IsValid() {
		cfg = append(cfg, nettypes.IPAMConfig{Subnet: n.Subnet6, Gateway: n.Gateway6})
	}
	opts := map[string]string{"com.docker.network.bridge.name": n.Bridge}
	for k, v := range n.Options {
		opts[k] = v
	}
	out := nettypes.Inspect{
		Network: nettypes.Network{
			Name: n.Name, ID: n.ID, Created: n.Created, Scope: "local", Driver: n.Driver,
			EnableIPv4: true, EnableIPv6: n.Subnet6.IsValid(), Internal: n.Internal, Attachable: true,
			IPAM:    nettypes.IPAM{Driver: "default", Config: cfg},
			Options: opts, Labels: n.Labels,
		},
		Containers: map[string]nettypes.EndpointResource{},
	}
	for _, id := range e.attachedTo(store, n.Name) {
		er := nettypes.EndpointResource{EndpointID: id}
		if c, err := e.lookupContainer(id); err == nil {
			er.Name = c.Name
			if rec, err := e.readNetRecord(c); err == nil {
				if ep := rec.Endpoints[n.Name]; ep != nil && ep.Result != nil {
					er.IPv4Address, er.IPv6Address = ep.Result.IPv4, ep.Result.IPv6
					er.EndpointID = c.ID + "-" + ep.Result.IfName
					if hw, err := net.ParseMAC(ep.Result.MAC); err == nil {
						er.MacAddress = nettypes.HardwareAddr(hw)
					}
				}
			}
		}
		out.Containers[id] = er
	}
	return out
}

// attachedNow reports whether container id has an attachment on network.
func (e *Engine) attachedNow(store *network.Store, name, id string) bool {
	atts, _ := store.Attachments(id)
	for _, a := range atts {
		if a.Network == name {
			return true
		}
	}
	return false
}

// attachedTo lists the IDs of containers attached to a network now.
func (e *Engine) attachedTo(store *network.Store, name string) []string {
	atts, _ := store.Attachments("")
	seen := map[string]bool{}
	var ids []string
	for _, a := range atts {
		if a.Network == name && !seen[a.ContainerID] {
			seen[a.ContainerID] = true
			ids = append(ids, a.ContainerID)
		}
	}
	sort.Strings(ids)
	return ids
}

// NetworkCreate makes a user-defined network.
func (e *Engine) NetworkCreate(ctx context.Context, name string, o NetworkCreateOptions) (nettypes.CreateResponse, error) {
	store, err := e.networks()
	if err != nil {
		return nettypes.CreateResponse{}, err
	}
	n, err := store.Create(name, o)
	if err != nil {
		return nettypes.CreateResponse{}, err
	}
	return nettypes.CreateResponse{ID: n.ID}, nil
}

// NetworkList lists networks like `network ls` (the default bridge and the
// pseudo-networks host and none included) that pass the filters f
// (network_filter.go; nil for all).
func (e *Engine) NetworkList(ctx context.Context, f NetworkFilters) ([]nettypes.Inspect, error) {
	store, err := e.networks()
	if err != nil {
		return nil, err
	}
	nets, err := store.List()
	if err != nil {
		return nil, err
	}
	out := make([]nettypes.Inspect, 0, len(nets)+2)
	for _, n := range nets {
		out = append(out, e.apiNetwork(store, n))
	}
	for _, p := range []string{"host", "none"} {
		out = append(out, pseudoNetwork(p))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return filterNetworks(out, f)
}

// pseudoNetwork is host or none as Docker lists them.
func pseudoNetwork(name string) nettypes.Inspect {
	driver := name
	if name == "none" {
		driver = "null"
	}
	return nettypes.Inspect{
		Network:    nettypes.Network{Name: name, ID: pseudoNetworkID(name), Scope: "local", Driver: driver},
		Containers: map[string]nettypes.EndpointResource{},
	}
}

// pseudoNetworkID is host's or none's ID: a fixed hex string of Docker's
// length, different for the two (dockerd makes random ones at start).
func pseudoNetworkID(name string) string {
	sum := sha256.Sum256([]byte("berth pseudo-network " + name))
	return hex.EncodeToString(sum[:])
}

// NetworkInspect returns a network by name or ID prefix.
func (e *Engine) NetworkInspect(ctx context.Context, ref string) (nettypes.Inspect, error) {
	if ref == "host" || ref == "none" {
		return pseudoNetwork(ref), nil
	}
	store, err := e.networks()
	if err != nil {
		return nettypes.Inspect{}, err
	}
	n, err := store.Get(ref)
	if err != nil {
		return nettypes.Inspect{}, err
	}
	return e.apiNetwork(store, n), nil
}

// NetworkRemove removes a network no running container is attached to.
// A network in use is refused as a permission error, as dockerd does
// (libnetwork's ActiveEndpointsError is Forbidden, 403), not a conflict.
func (e *Engine) NetworkRemove(ctx context.Context, ref string) error {
	if ref == nettypes.NetworkHost || ref == nettypes.NetworkNone {
		// The store has no record of these to find; dockerd refuses.
		return fmt.Errorf("%s is a pre-defined network and cannot be removed: %w", ref, errdefs.ErrPermission)
	}
	store, err := e.networks()
	if err != nil {
		return err
	}
	n, err := store.Get(ref)
	if err != nil {
		return err
	}
	if ids := e.attachedTo(store, n.Name); len(ids) > 0 {
		return fmt.Errorf("error while removing network: network %s has active endpoints (%s): %w", n.Name, strings.Join(shortIDs(ids), ", "), errdefs.ErrPermission)
	}
	return store.Remove(n.Name)
}

func shortIDs(ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id[:min(12, len(id))]
	}
	return out
}

// NetworkPrune removes user-defined networks without containers that the
// filters f (until, label, label!) do not spare and returns their names.
// It also sweeps the host of berth's firewall rules whose bridge or
// container is gone (network.SweepStaleRules): a network removed by hand,
// a bridge deleted with `ip link`, an instance whose directories were
// deleted with containers running.
func (e *Engine) NetworkPrune(ctx context.Context, f NetworkFilters) ([]string, error) {
	pf, err := parsePruneFilter(f, time.Now())
	if err != nil {
		return nil, err
	}
	store, err := e.networks()
	if err != nil {
		return nil, err
	}
	e.reclaimOrphanAttachments(ctx, store)
	defer func() { _, _ = network.SweepStaleRules() }()
	nets, err := store.List()
	if err != nil {
		return nil, err
	}
	// Networks a container is configured for count as used even while it
	// is stopped, as in Docker.
	used := map[string]bool{}
	if cs, err := e.listContainers(); err == nil {
		for _, c := range cs {
			if rec, err := e.readNetRecord(c); err == nil {
				for name := range rec.Endpoints {
					used[name] = true
				}
			}
		}
	}
	var out []string
	for _, n := range nets {
		if n.Name == network.DefaultNetwork || used[n.Name] || pf.keeps(n.Created, n.Labels) || len(e.attachedTo(store, n.Name)) > 0 {
			continue
		}
		if err := store.Remove(n.Name); err != nil {
			if errdefs.IsNotFound(err) {
				continue // removed meanwhile by another command
			}
			return out, err
		}
		out = append(out, n.Name)
	}
	return out, nil
}

// reclaimOrphanAttachments tears down attachments whose container no
// longer exists: a process killed between removing a container's record
// and its network teardown leaves them, and no `rm` can name them again.
// A container's record is written before its network is set up, so an
// attachment being made now always has one.
func (e *Engine) reclaimOrphanAttachments(ctx context.Context, store *network.Store) {
	atts, err := store.Attachments("")
	if err != nil {
		return
	}
	orphans := map[string][]string{} // container ID → its networks
	for _, a := range atts {
		if _, seen := orphans[a.ContainerID]; !seen {
			if _, err := e.readContainer(a.ContainerID); !errors.Is(err, os.ErrNotExist) {
				continue
			}
		}
		orphans[a.ContainerID] = append(orphans[a.ContainerID], a.Network)
	}
	for id, nets := range orphans {
		_ = store.DetachAll(ctx, id)
		for _, n := range nets {
			if left, err := store.RemoveRecord(n, id); err == nil && left == 0 {
				_ = store.StopDNSIfIdle(n)
			}
		}
		_ = network.RemoveNetNS(e.netnsPath(id))
	}
}

// NetworkConnect adds a network to a container; a running container is
// attached at once (a new interface eth<N>), a stopped one at its next start.
func (e *Engine) NetworkConnect(ctx context.Context, netRef, ref string, o NetworkConnectOptions) error {
	c, err := e.lookupContainer(ref)
	if err != nil {
		return err
	}
	// dockerd's refusals, in its words and as invalid arguments (400).
	switch {
	case netMode(c) == "none" || netRef == nettypes.NetworkNone:
		return fmt.Errorf("container cannot be connected to multiple networks with one of the networks in private (none) mode: %w", errdefs.ErrInvalidArgument)
	case !usesCNI(c):
		return fmt.Errorf("container sharing network namespace with another container or host cannot be connected to any other network: %w", errdefs.ErrInvalidArgument)
	case netRef == nettypes.NetworkHost:
		return fmt.Errorf("container cannot be disconnected from host network or connected to host network: %w", errdefs.ErrInvalidArgument)
	}
	store, err := e.networks()
	if err != nil {
		return err
	}
	n, err := store.Get(netRef)
	if err != nil {
		return err
	}
	unlock, err := e.lockNetRecord(c.ID)
	if err != nil {
		return err
	}
	defer unlock()
	rec, err := e.readNetRecord(c)
	if err != nil {
		return err
	}
	running := e.state(c).Running()
	if _, ok := rec.Endpoints[n.Name]; ok {
		if !running {
			// dockerd keeps the configuration it has and answers 200
			// ("Avoid duplicate config" in updateNetworkSettings).
			return nil
		}
		// libnetwork's CreateEndpoint refuses a second endpoint of one
		// name with a Forbidden error (403), not a conflict.
		return fmt.Errorf("endpoint with name %s already exists in network %s: %w", c.Name, n.Name, errdefs.ErrPermission)
	}
	order := 0
	for _, ep := range rec.Endpoints {
		order = max(order, ep.Order+1)
	}
	v4, v6, err := o.statics()
	if err != nil {
		return err
	}
	if m := o.MAC; len(m) > 0 && (len(m) != 6 || m[0]&1 != 0) {
		// An interface takes a 6-byte unicast address: the kernel
		// refuses a group address (EADDRNOTAVAIL) and longer forms are
		// not Ethernet's. Refused now rather than at the next start.
		return fmt.Errorf("invalid MAC address %s: not a unicast Ethernet address: %w", m, errdefs.ErrInvalidArgument)
	}
	if (v4.IsValid() || v6.IsValid()) && store.Native(n) {
		// Refused now, as dockerd does, not at the next start.
		if err := network.ValidateStatic(n, v4, v6); err != nil {
			return err
		}
	}
	ep := &netEndpoint{Aliases: o.Aliases, Order: order}
	ep.setStatics(v4, v6)
	if len(o.MAC) > 0 {
		// Kept in the record like create's, so a stopped container gets
		// it at its next start and every restart after.
		ep.MAC = o.MAC.String()
	}
	rec.Endpoints[n.Name] = ep
	if rec.SandboxKey != "" && network.IsNetNS(rec.SandboxKey) && running {
		used := map[string]bool{}
		for _, x := range rec.Endpoints {
			if x.Result != nil {
				used[x.Result.IfName] = true
			}
		}
		ifName := ""
		for i := 0; ifName == "" || used[ifName]; i++ {
			ifName = "eth" + strconv.Itoa(i)
		}
		res, err := store.Attach(ctx, n, network.Attachment{ContainerID: c.ID, NetNS: rec.SandboxKey, IfName: ifName, IPv4: v4, IPv6: v6, MAC: ep.MAC})
		if err != nil {
			return err
		}
		ep.Result = res
		if n.DNS {
			if err := e.publishRecord(store, n, c, ep); err != nil {
				_ = store.Detach(context.WithoutCancel(ctx), n.Name, c.ID, ifName)
				return err
			}
		}
		if err := e.editHosts(c, res, false); err != nil {
			if n.DNS {
				_, _ = store.RemoveRecord(n.Name, c.ID)
			}
			_ = store.Detach(context.WithoutCancel(ctx), n.Name, c.ID, ifName)
			return err
		}
	}
	return e.writeNetRecord(c.ID, rec)
}

// editHosts adds the address of a running container's new attachment to
// its /etc/hosts under the container's own names, or with remove takes
// it out again, as Docker does on connect and disconnect. The file is
// edited in place, not rebuilt (the container may have changed it), and
// rewritten through the same inode, which is what the container has
// bind-mounted. Like setupNetwork's, the entries are IPv4 ones.
func (e *Engine) editHosts(c *Container, res *network.Result, remove bool) error {
	if res == nil || !res.IPv4.IsValid() {
		return nil
	}
	p := filepath.Join(e.bundleDir(c.ID), "hosts")
	old, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil // not started with a network of its own
	}
	if err != nil {
		return fmt.Errorf("hosts file of %s: %w", c.Name, err)
	}
	names := network.HostNames(c.Config.Hostname, c.Config.Domainname)
	edit := network.AddHostsEntry
	if remove {
		edit = network.RemoveHostsEntry
	}
	b := edit(old, res.IPv4.Addr(), names)
	if bytes.Equal(b, old) {
		return nil
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return fmt.Errorf("hosts file of %s: %w", c.Name, err)
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("hosts file of %s: %w", c.Name, err)
	}
	return nil
}

// NetworkDisconnect removes a network from a container (detaching it now
// when it runs).
func (e *Engine) NetworkDisconnect(ctx context.Context, netRef, ref string, force bool) error {
	c, err := e.lookupContainer(ref)
	if err != nil {
		return err
	}
	if netRef == nettypes.NetworkHost && netMode(c) == "host" {
		return fmt.Errorf("container cannot be disconnected from host network or connected to host network: %w", errdefs.ErrInvalidArgument)
	}
	store, err := e.networks()
	if err != nil {
		return err
	}
	n, err := store.Get(netRef)
	if err != nil {
		return err
	}
	unlock, err := e.lockNetRecord(c.ID)
	if err != nil {
		return err
	}
	defer unlock()
	rec, err := e.readNetRecord(c)
	if err != nil {
		return err
	}
	ep, ok := rec.Endpoints[n.Name]
	if !ok && !(force && e.attachedNow(store, n.Name, c.ID)) {
		// dockerd answers 500 with the full ID, forced or not, unless
		// force finds a stale endpoint to delete; its words differ by
		// one "the" between a running container and a stopped one
		// (disconnectFromNetwork, DisconnectFromNetwork). The error has
		// no category on purpose: that is what makes it a 500.
		if e.state(c).Running() {
			return fmt.Errorf("container %s is not connected to network %s", c.ID, n.Name)
		}
		return fmt.Errorf("container %s is not connected to the network %s", c.ID, n.Name)
	}
	var hostsErr error
	if ep != nil && ep.Result != nil {
		if err := store.Detach(ctx, n.Name, c.ID, ep.Result.IfName); err != nil {
			return err
		}
		hostsErr = e.editHosts(c, ep.Result, true)
	} else if force {
		// An attachment the record does not name (a connect killed
		// half-way): force deletes it, as dockerd deletes a stale
		// endpoint by name.
		_ = store.Detach(ctx, n.Name, c.ID, "")
	}
	if left, err := store.RemoveRecord(n.Name, c.ID); err == nil && left == 0 {
		_ = store.StopDNSIfIdle(n.Name)
	}
	delete(rec.Endpoints, n.Name)
	return errors.Join(e.writeNetRecord(c.ID, rec), hostsErr)
}
