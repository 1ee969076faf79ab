package network

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// vethName is the host end of containerID's ifName: derived, not random,
// so a teardown that has nothing but the container ID and the interface
// (a record written before a crash) still finds it. "veth" and 11 hex
// digits fill IFNAMSIZ (15 characters).
func vethName(containerID, ifName string) string {
	h := sha256.Sum256([]byte(containerID + "/" + ifName))
	return "veth" + hex.EncodeToString(h[:])[:11]
}

// attachNative attaches a container to a native network: the record
// first (so any crash from here on is torn down by the next Detach), then
// the network's bridge and rules once, its leases (both families or
// none), a veth pair whose peer is created directly in the container's
// namespace, the addresses and routes inside it over a netlink socket
// opened in that namespace, and the published ports in one
// iptables-restore. Nothing is executed for a container without
// published ports.
func (s *Store) attachNative(ctx context.Context, n *Network, a Attachment, ports []PortMapping) (_ *Result, retErr error) {
	// Static addresses the network cannot hold fail before anything is
	// recorded or set up.
	if err := ValidateStatic(n, a.IPv4, a.IPv6); err != nil {
		return nil, err
	}
	ep := &endpoint{ContainerID: a.ContainerID, Network: n.Name, IfName: a.IfName, Bridge: n.Bridge, NetNS: a.NetNS, Ports: ports, IPv6: n.Subnet6.IsValid()}
	if err := s.writeEndpoint(ep); err != nil {
		return nil, fmt.Errorf("network %s: record of %s: %w", n.Name, a.ContainerID, err)
	}
	defer func() {
		if retErr != nil {
			_ = s.detachNative(context.WithoutCancel(ctx), ep, false)
		}
	}()
	br, err := s.ensureBridge(n)
	if err != nil {
		return nil, err
	}
	res := &Result{Network: n.Name, IfName: a.IfName, Ports: ports}
	// Both addresses or neither: a failure to take the second releases
	// the first here rather than leaving it to the deferred detach.
	ip4, ip6, err := s.ipamOf(n.Name).reserve(n, a.IPv4, a.IPv6, a.ContainerID, a.IfName)
	if err != nil {
		if errdefs.IsInvalidArgument(err) {
			return nil, err // names the network already
		}
		return nil, fmt.Errorf("network %s: %w", n.Name, err)
	}
	res.IPv4, res.Gateway = netip.PrefixFrom(ip4, n.Subnet.Bits()), n.Gateway
	if ip6.IsValid() {
		res.IPv6, res.Gateway6 = netip.PrefixFrom(ip6, n.Subnet6.Bits()), n.Gateway6
	}
	var user net.HardwareAddr
	if a.MAC != "" {
		if user, err = net.ParseMAC(a.MAC); err != nil {
			return nil, fmt.Errorf("invalid MAC address %q: %w", a.MAC, errdefs.ErrInvalidArgument)
		}
	}
	mac, err := s.ipamOf(n.Name).pickMAC(ip4, user, leaseOwner(a.ContainerID, a.IfName))
	if err != nil {
		return nil, fmt.Errorf("network %s: %w", n.Name, err)
	}
	res.MAC = mac.String()
	if err := s.plumb(n, a, br, res, mac, len(ports) > 0); err != nil {
		return nil, fmt.Errorf("network %s: attach %s: %w", n.Name, a.ContainerID, err)
	}
	if len(ports) > 0 {
		if err := publishPorts(n, a.ContainerID, ip4, res.IPv6.Addr(), ports); err != nil {
			return nil, fmt.Errorf("network %s: publish ports of %s: %w", n.Name, a.ContainerID, err)
		}
	}
	return res, nil
}

// plumb creates the veth pair and configures the container's end in
// three netlink round trips (veth_linux.go): the pair, its host end
// enslaved to the bridge and up without IPv6 addresses, its peer in the
// namespace; the peer's index; its addresses, link-up and default routes
// in one batch.
func (s *Store) plumb(n *Network, a Attachment, br netlink.Link, res *Result, mac net.HardwareAddr, hairpin bool) error {
	ns, err := netns.GetFromPath(a.NetNS)
	if err != nil {
		return fmt.Errorf("open namespace %s: %w", a.NetNS, err)
	}
	defer ns.Close()
	host := vethName(a.ContainerID, a.IfName)
	r, err := openRTNL()
	if err != nil {
		return err
	}
	defer r.close()
	add := func() error {
		_, err := r.do(vethRequest(host, a.IfName, br.Attrs().Index, mtuOption(n), mac, int(ns)),
			addrGenNoneRequest(0, host), linkUpRequest(0, host))
		return err
	}
	err = add()
	if errors.Is(err, unix.EEXIST) {
		// The same container's previous veth: its namespace was removed
		// (DetachAll) but the kernel has not finished destroying it, as
		// when a container restarts at once. Delete it now.
		if old, lerr := netlink.LinkByName(host); lerr == nil {
			_ = netlink.LinkDel(old)
		}
		err = add()
	}
	if err != nil {
		return fmt.Errorf("create veth %s: %w", host, err)
	}
	if hairpin {
		// A container reaching its own published port through a host
		// address comes back in through the port it left by.
		if err := os.WriteFile("/sys/class/net/"+host+"/brport/hairpin_mode", []byte("1"), 0o644); err != nil {
			return fmt.Errorf("hairpin on %s: %w", host, err)
		}
	}
	h, err := openRTNLIn(ns)
	if err != nil {
		return fmt.Errorf("netlink in %s: %w", a.NetNS, err)
	}
	defer h.close()
	index, err := h.linkIndex(a.IfName)
	if err != nil {
		return fmt.Errorf("%s in %s: %w", a.IfName, a.NetNS, err)
	}
	// In order: IPv6 address generation off (it must precede the link-up
	// to matter), the addresses, the link-up (which adds the connected
	// routes), then the default routes, whose gateways those make
	// reachable.
	var reqs []*nl.NetlinkRequest
	var what []string
	if !res.IPv6.IsValid() {
		reqs, what = append(reqs, addrGenNoneRequest(index, "")), append(what, "IPv6 address generation off")
	}
	reqs = append(reqs, addrRequest(index, res.IPv4))
	what = append(what, "address "+res.IPv4.String())
	if res.IPv6.IsValid() {
		reqs = append(reqs, addrRequest(index, res.IPv6))
		what = append(what, "address "+res.IPv6.String())
	}
	reqs = append(reqs, linkUpRequest(index, ""))
	what = append(what, "set up")
	// An internal network has no way out; a second interface must not
	// take the first one's default route.
	if !n.Internal && a.IfName == "eth0" {
		reqs = append(reqs, defaultRouteRequest(index, n.Gateway))
		what = append(what, "default route via "+n.Gateway.String())
		if res.IPv6.IsValid() {
			reqs = append(reqs, defaultRouteRequest(index, n.Gateway6))
			what = append(what, "default route via "+n.Gateway6.String())
		}
	}
	if i, err := h.do(reqs...); err != nil {
		return fmt.Errorf("%s on %s: %w", what[i], a.IfName, err)
	}
	return nil
}

func ipNet(p netip.Prefix) *net.IPNet {
	a := p.Addr()
	return &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(p.Bits(), a.BitLen())}
}

// detachNative undoes attachNative from what the record and the names
// derived from the container ID say; each step tolerates what is already
// gone, so it serves a finished attach, a half-done one and a second call.
//
// With nsGoing the caller removes the container's namespace right after
// (RemoveNetNS), and the veth is left to it: the kernel deletes a dying
// namespace's devices in its cleanup work, batched, where deleting a veth
// here waits for an RCU grace period under the RTNL lock (10-40 ms on
// this machine, more than all of the attach).
func (s *Store) detachNative(_ context.Context, ep *endpoint, nsGoing bool) error {
	var errs []error
	if len(ep.Ports) > 0 {
		if err := unpublishPorts(ep.ContainerID, ep.IPv6); err != nil {
			errs = append(errs, err)
		}
	}
	// Deleting one end of a veth deletes both. Should the namespace be
	// gone already, the pair went with it.
	if nsGoing && ep.NetNS != "" && IsNetNS(ep.NetNS) {
		// left to the namespace's end
	} else if l, err := netlink.LinkByName(vethName(ep.ContainerID, ep.IfName)); err == nil {
		if err := netlink.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
			errs = append(errs, fmt.Errorf("delete %s: %w", l.Attrs().Name, err))
		}
	}
	if err := s.ipamOf(ep.Network).release(ep.ContainerID, ep.IfName); err != nil {
		errs = append(errs, fmt.Errorf("network %s: release leases of %s: %w", ep.Network, ep.ContainerID, err))
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return s.removeEndpoint(ep.ContainerID, ep.IfName)
}

// ensureBridge returns n's bridge, creating it, its gateway addresses,
// the forwarding sysctls and the network's firewall rules the first time
// (per state directory, which a reboot clears with the bridge). The fast
// path is one netlink query and one stat.
func (s *Store) ensureBridge(n *Network) (netlink.Link, error) {
	mark := s.nativeMark(n)
	// sysfs answers "does the bridge exist, and its index" with one small
	// read, where a netlink query opens a socket.
	if b, err := os.ReadFile("/sys/class/net/" + n.Bridge + "/ifindex"); err == nil {
		if idx, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			if _, err := os.Stat(mark); err == nil {
				return &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: n.Bridge, Index: idx, MTU: mtuOption(n)}}, nil
			}
		}
	}
	unlock, err := s.netLock(n.Name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	br, err := netlink.LinkByName(n.Bridge)
	if _, serr := os.Stat(mark); err == nil && serr == nil {
		return br, nil // another attach set it up while this one waited
	}
	if err != nil {
		la := netlink.LinkAttrs{Name: n.Bridge, Flags: net.FlagUp, MTU: mtuOption(n)}
		if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: la}); err != nil && !errors.Is(err, unix.EEXIST) {
			return nil, fmt.Errorf("network %s: create bridge %s: %w", n.Name, n.Bridge, err)
		}
		if br, err = netlink.LinkByName(n.Bridge); err != nil {
			return nil, fmt.Errorf("network %s: bridge %s: %w", n.Name, n.Bridge, err)
		}
	}
	gws := []netip.Prefix{netip.PrefixFrom(n.Gateway, n.Subnet.Bits())}
	if n.Subnet6.IsValid() {
		gws = append(gws, netip.PrefixFrom(n.Gateway6, n.Subnet6.Bits()))
	}
	for _, p := range gws {
		if err := netlink.AddrReplace(br, &netlink.Addr{IPNet: ipNet(p), Flags: unix.IFA_F_NODAD}); err != nil {
			return nil, fmt.Errorf("network %s: gateway %s on %s: %w", n.Name, p, n.Bridge, err)
		}
	}
	if err := netlink.LinkSetUp(br); err != nil {
		return nil, fmt.Errorf("network %s: set %s up: %w", n.Name, n.Bridge, err)
	}
	sysctls := map[string]string{
		// Packets to 127.0.0.1 DNATed to a container leave through the
		// bridge only when it may route the loopback range.
		"net/ipv4/conf/" + n.Bridge + "/route_localnet": "1",
	}
	if !n.Internal {
		sysctls["net/ipv4/ip_forward"] = "1"
		if n.Subnet6.IsValid() {
			sysctls["net/ipv6/conf/all/forwarding"] = "1"
		}
	}
	for k, v := range sysctls {
		if err := writeSysctl(k, v); err != nil {
			return nil, fmt.Errorf("network %s: %w", n.Name, err)
		}
	}
	if err := ensureNetworkRules(n); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(mark), 0o711); err != nil {
		return nil, err
	}
	if err := os.WriteFile(mark, nil, 0o600); err != nil {
		return nil, err
	}
	return br, nil
}

// mtuOption is the network's MTU option, 0 for the kernel's default.
func mtuOption(n *Network) int {
	mtu, _ := strconv.Atoi(n.Options["com.docker.network.driver.mtu"])
	return mtu
}

// writeSysctl sets /proc/sys/<key> unless it has the value already.
func writeSysctl(key, val string) error {
	p := filepath.Join("/proc/sys", key)
	if b, err := os.ReadFile(p); err == nil && string(b) == val+"\n" {
		return nil
	}
	if err := os.WriteFile(p, []byte(val), 0o644); err != nil {
		return fmt.Errorf("sysctl %s=%s: %w", key, val, err)
	}
	return nil
}
