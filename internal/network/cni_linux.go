package network

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	cnitypes100 "github.com/containernetworking/cni/pkg/types/100"
	cnicreate "github.com/containernetworking/cni/pkg/types/create"
)

// confListFromFile reads and parses a network's conflist.
func confListFromFile(path string) (*cniList, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseConfList(b)
}

// netLock serializes CNI operations on one network: the bridge plugin
// races with itself creating the bridge, and iptables chains of portmap
// and firewall are edited read-modify-write.
func (s *Store) netLock(name string) (func(), error) {
	return flockFile(filepath.Join(s.opts.State, "network", "locks", name))
}

// Attach attaches a container to network n: with the native driver when
// s.Native(n), else by CNI ADD of n's conflist. Host ports are reserved
// (and checked free with a bind) first; a failure rolls back everything
// the attach did.
func (s *Store) Attach(ctx context.Context, n *Network, a Attachment) (_ *Result, retErr error) {
	if a.IfName == "" {
		a.IfName = "eth0"
	}
	ports, err := s.reservePorts(a.ContainerID, a.Ports)
	if err != nil {
		return nil, err
	}
	defer func() {
		if retErr != nil {
			s.releasePorts(a.ContainerID, ports)
		}
	}()
	if s.Native(n) {
		return s.attachNative(ctx, n, a, ports)
	}
	return s.attachCNI(ctx, n, a, ports)
}

// attachCNI runs CNI ADD of n's conflist (cniexec_linux.go).
func (s *Store) attachCNI(ctx context.Context, n *Network, a Attachment, ports []PortMapping) (_ *Result, retErr error) {
	list, err := confListFromFile(s.confPath(n.Name))
	if err != nil {
		return nil, fmt.Errorf("network %s: %w", n.Name, err)
	}
	unlock, err := s.netLock(n.Name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	// The isolation rules are installed once per network and state
	// directory (a reboot clears both): each iptables call costs
	// milliseconds on every container start otherwise. They are
	// installed after ADD, once the bridge plugin has made the bridge
	// (the container's process has not started yet, so nothing passes
	// meanwhile): rules naming a bridge that does not exist are what a
	// sweep removes. A bridge deleted by hand is made again by ADD, and
	// its rules with it.
	mark := filepath.Join(s.opts.State, "network", "isolation", n.Name+"-"+n.ID[:12])
	_, merr := os.Stat(mark)
	needIsolation := merr != nil || !linkExists(n.Bridge)
	rt := &cniRuntime{
		ContainerID: a.ContainerID, NetNS: a.NetNS, IfName: a.IfName,
		Args:           [][2]string{{"IgnoreUnknown", "1"}},
		CapabilityArgs: map[string]any{},
	}
	if ips := staticIPs(n, a); len(ips) == 1 {
		// CNI_ARGS carries one address (host-local's IP= parses exactly
		// one), which every IPAM plugin of old understands.
		rt.Args = append(rt.Args, [2]string{"IP", strings.SplitN(ips[0], "/", 2)[0]})
		rt.CapabilityArgs["ips"] = ips
	} else if len(ips) > 1 {
		// Both families: the "ips" capability for plugins that declare
		// it, and the conventions' args.cni.ips for the rest (execPlugin).
		// host-local reserves both or, releasing what it took, neither.
		rt.CapabilityArgs["ips"] = ips
	}
	if a.MAC != "" {
		rt.CapabilityArgs["mac"] = a.MAC
	}
	if pm := cniPortMappings(ports); len(pm) > 0 {
		rt.CapabilityArgs["portMappings"] = pm
	}
	// The marker comes first: rules of an ADD whose caller dies are
	// recognised as berth's by it alone (sweep_linux.go).
	if err := markCNI(a.ContainerID, a.IfName, cniMark{NetNS: a.NetNS}); err != nil {
		return nil, fmt.Errorf("network %s: %w", n.Name, err)
	}
	defer func() {
		if retErr != nil {
			// DEL cleans what a half-done ADD left (a veth, a lease,
			// port rules).
			if s.cniDel(context.WithoutCancel(ctx), list, rt) == nil {
				unmarkCNI(a.ContainerID, a.IfName)
			}
		}
	}()
	raw, err := s.cniAdd(ctx, list, rt)
	if err != nil {
		return nil, fmt.Errorf("network %s: attach %s: %w", n.Name, a.ContainerID, err)
	}
	if needIsolation {
		if err := ensureIsolation(n); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Dir(mark), 0o711); err == nil {
			_ = os.WriteFile(mark, nil, 0o600)
		}
	}
	res, err := cnicreate.CreateFromBytes(raw)
	var r100 *cnitypes100.Result
	if err == nil {
		r100, err = cnitypes100.NewResultFromResult(res)
	}
	if err != nil {
		return nil, fmt.Errorf("network %s: %w", n.Name, err)
	}
	out := &Result{Network: n.Name, IfName: a.IfName, Ports: ports}
	for _, ifc := range r100.Interfaces {
		if ifc.Name == a.IfName && ifc.Sandbox != "" {
			out.MAC = ifc.Mac
		}
	}
	for _, ip := range r100.IPs {
		addr, ok := netip.AddrFromSlice(ip.Address.IP)
		if !ok {
			continue
		}
		addr = addr.Unmap()
		ones, _ := ip.Address.Mask.Size()
		gw, _ := netip.AddrFromSlice(ip.Gateway)
		if addr.Is4() {
			out.IPv4, out.Gateway = netip.PrefixFrom(addr, ones), gw.Unmap()
		} else {
			out.IPv6, out.Gateway6 = netip.PrefixFrom(addr, ones), gw
		}
	}
	// The addresses recognise the firewall plugin's rules, which carry
	// no comment; should this write fail, a sweep still finds the rest.
	ips := cniMark{NetNS: a.NetNS}
	for _, p := range []netip.Prefix{out.IPv4, out.IPv6} {
		if p.IsValid() {
			ips.IPs = append(ips.IPs, p.Addr().String())
		}
	}
	_ = markCNI(a.ContainerID, a.IfName, ips)
	return out, nil
}

// staticIPs renders an attachment's static addresses as the "ips"
// capability wants them (CIDR, the prefix length of the network's subnet
// of that family, or the whole address when a user's conflist has other
// subnets than berth recorded).
func staticIPs(n *Network, a Attachment) []string {
	var out []string
	for _, x := range []struct {
		ip     netip.Addr
		subnet netip.Prefix
	}{{a.IPv4.Unmap(), n.Subnet}, {a.IPv6, n.Subnet6}} {
		if !x.ip.IsValid() {
			continue
		}
		bits := x.ip.BitLen()
		if x.subnet.IsValid() && x.subnet.Contains(x.ip) {
			bits = x.subnet.Bits()
		}
		out = append(out, netip.PrefixFrom(x.ip, bits).String())
	}
	return out
}

// Detach runs CNI DEL for a container's interface on a network, with the
// configuration and runtime arguments cached at ADD (so a network whose
// conflist changed or was removed, and a namespace that is gone, are still
// torn down). Detaching what is not attached is a no-op, so crash recovery
// can call it blindly. ifName "" detaches every interface on network;
// network "" every attachment of the container. The container's reserved
// host ports are freed once it has no attachment left.
func (s *Store) Detach(ctx context.Context, network, containerID, ifName string) error {
	return s.detach(ctx, network, containerID, ifName, false)
}

// DetachAll detaches every attachment of a container whose network
// namespace the caller removes (RemoveNetNS) right after: the native
// driver leaves the veths to the namespace's end rather than pay for
// deleting them one by one.
func (s *Store) DetachAll(ctx context.Context, containerID string) error {
	return s.detach(ctx, "", containerID, "", true)
}

func (s *Store) detach(ctx context.Context, network, containerID, ifName string, nsGoing bool) error {
	eps, err := s.endpoints(containerID)
	if err != nil {
		return err
	}
	var errs []error
	left := 0
	for _, ep := range eps {
		if (network != "" && ep.Network != network) || (ifName != "" && ep.IfName != ifName) {
			left++
			continue
		}
		if err := s.detachNative(ctx, ep, nsGoing); err != nil {
			errs = append(errs, err)
		}
	}
	atts, err := s.cniCachedAttachments(containerID)
	if err != nil {
		return err
	}
	for _, at := range atts {
		if (network != "" && at.Network != network) || (ifName != "" && at.IfName != ifName) {
			left++
			continue
		}
		list, err := parseConfList(at.Config)
		if err != nil {
			errs = append(errs, fmt.Errorf("network %s: cached config of %s: %w", at.Network, containerID, err))
			continue
		}
		rt := &cniRuntime{
			ContainerID: containerID, IfName: at.IfName, NetNS: at.NetNS,
			Args: at.CniArgs, CapabilityArgs: at.CapabilityArgs,
		}
		if rt.NetNS != "" && !IsNetNS(rt.NetNS) {
			// The namespace is gone (its veth with it): the plugins
			// still release the lease and the port rules.
			rt.NetNS = ""
		}
		unlock, err := s.netLock(at.Network)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		err = s.cniDel(ctx, list, rt)
		unlock()
		if err != nil {
			errs = append(errs, fmt.Errorf("network %s: detach %s: %w", at.Network, containerID, err))
			continue
		}
		unmarkCNI(containerID, at.IfName)
	}
	if left == 0 && len(errs) == 0 {
		s.releasePorts(containerID, nil)
	}
	return errors.Join(errs...)
}

// DetachUncached runs CNI DEL of network n for a container whose ADD left
// no cache entry: the process running ADD was killed while the plugins
// ran, and the plugins (separate processes) may still have made a veth,
// a lease and port rules. DEL with the network's current configuration
// and the same container ID and interface releases all of them; without a
// namespace the bridge plugin cannot name the masquerade rules, so the
// caller sweeps those by container ID.
func (s *Store) DetachUncached(ctx context.Context, n *Network, containerID, ifName, netns string, ports []PortMapping) error {
	if s.Native(n) {
		// The native driver records before it acts, so Detach has seen
		// all it did; what is left is at most a lease or a veth of a
		// record that failed to be written. Its names derive from the
		// container ID.
		err := s.detachNative(ctx, &endpoint{ContainerID: containerID, Network: n.Name, IfName: ifName, Ports: ports, IPv6: n.Subnet6.IsValid()}, false)
		if err == nil {
			s.releasePorts(containerID, nil)
		}
		return err
	}
	list, err := confListFromFile(s.confPath(n.Name))
	if err != nil {
		return fmt.Errorf("network %s: %w", n.Name, err)
	}
	if netns != "" && !IsNetNS(netns) {
		netns = ""
	}
	rt := &cniRuntime{
		ContainerID: containerID, NetNS: netns, IfName: ifName,
		Args:           [][2]string{{"IgnoreUnknown", "1"}},
		CapabilityArgs: map[string]any{},
	}
	if pm := cniPortMappings(ports); len(pm) > 0 {
		rt.CapabilityArgs["portMappings"] = pm
	}
	unlock, err := s.netLock(n.Name)
	if err != nil {
		return err
	}
	err = s.cniDel(ctx, list, rt)
	unlock()
	if err != nil {
		return fmt.Errorf("network %s: detach %s: %w", n.Name, containerID, err)
	}
	unmarkCNI(containerID, ifName)
	s.releasePorts(containerID, nil)
	return nil
}

// Attachments lists a container's attachments (every container's for
// ""): the native driver's records and the CNI result cache, what Detach tears
// down.
func (s *Store) Attachments(containerID string) ([]AttachmentInfo, error) {
	eps, err := s.endpoints(containerID)
	if err != nil {
		return nil, err
	}
	out := make([]AttachmentInfo, 0, len(eps))
	for _, ep := range eps {
		out = append(out, AttachmentInfo{ContainerID: ep.ContainerID, Network: ep.Network, IfName: ep.IfName})
	}
	atts, err := s.cniCachedAttachments(containerID)
	if err != nil {
		return nil, err
	}
	for _, a := range atts {
		out = append(out, AttachmentInfo{ContainerID: a.ContainerID, Network: a.Network, IfName: a.IfName})
	}
	return out, nil
}

// cniPortMappings is the portMappings capability argument of ports. A
// port without a host port (0, a random one that was to be picked at
// reservation) is left out: portmap refuses 0, and its chains go by
// container ID anyway (DetachUncached's caller sweeps what is left).
func cniPortMappings(ports []PortMapping) []map[string]any {
	pm := make([]map[string]any, 0, len(ports))
	for _, p := range ports {
		if p.HostPort == 0 {
			continue
		}
		m := map[string]any{"hostPort": p.HostPort, "containerPort": p.ContainerPort, "protocol": p.Protocol}
		if p.HostIP != "" {
			m["hostIP"] = p.HostIP
		}
		pm = append(pm, m)
	}
	return pm
}
