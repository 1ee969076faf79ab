package network

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"regexp"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
)

// DefaultNetwork is the name of the network containers join by default.
const DefaultNetwork = "bridge"

// Defaults of the default network.
const (
	DefaultBridge = "berth0"
	DefaultSubnet = "10.88.0.0/16"
)

// cniVersion is the newest version Debian 12's plugins speak.
const cniVersion = "1.0.0"

// Network is a network's metadata (<root>/networks/<name>.json). The
// conflist beside it is what runs; these fields describe it for inspect
// and are what berth generated it from.
type Network struct {
	Name     string
	ID       string
	Driver   string // "bridge"
	Created  time.Time
	Bridge   string // the Linux bridge's name
	Subnet   netip.Prefix
	Gateway  netip.Addr
	IPRange  netip.Prefix `json:",omitzero"`
	Subnet6  netip.Prefix `json:",omitzero"`
	Gateway6 netip.Addr   `json:",omitzero"`
	Internal bool
	// DNS is true for user-defined networks: containers get the embedded
	// DNS server as their resolver.
	DNS     bool
	Options map[string]string `json:",omitempty"`
	Labels  map[string]string `json:",omitempty"`
	// Native marks a network this version created for its built-in
	// driver (Store.Native); networks of older versions lack it and keep
	// running through the CNI plugins.
	Native bool `json:",omitempty"`
}

// CreateOptions describe a new network (`network create` flags).
type CreateOptions struct {
	Driver   string // "" or "bridge"
	Subnet   string // CIDR; "" picks a free /24 in 10.89.0.0/16 and up
	Gateway  string // "" is the subnet's first address
	IPRange  string // allocate container addresses from this sub-range
	Internal bool
	IPv6     bool
	Subnet6  string // with IPv6; "" picks a free fdXX::/64
	Gateway6 string
	// Bridge names the Linux bridge ("" derives one, or the "com.docker.
	// network.bridge.name" / "bridge.name" option).
	Bridge  string
	Options map[string]string
	Labels  map[string]string
}

var nameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// ValidName reports whether name can name a network (Docker's rule).
func ValidName(name string) error {
	if !nameRE.MatchString(name) || len(name) > 64 {
		return fmt.Errorf("invalid network name %q: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed: %w", name, errdefs.ErrInvalidArgument)
	}
	return nil
}

// bridgeName derives a bridge name unique to (root, network): "br-" and 12
// hex digits fit IFNAMSIZ (15 characters).
func bridgeName(root, name string) string {
	h := sha256.Sum256([]byte(root + "\x00" + name))
	return "br-" + hex.EncodeToString(h[:6])
}

// networkID is a network's stable 64-hex-digit ID.
func networkID(root, name string, created time.Time) string {
	h := sha256.Sum256([]byte(root + "\x00" + name + "\x00" + created.String()))
	return hex.EncodeToString(h[:])
}

// conflist renders n as the CNI configuration list berth runs: bridge with
// host-local IPAM (leases under ipamDir), portmap for published ports,
// firewall so a FORWARD policy of DROP (as dockerd sets) lets the
// container's traffic through, and tuning for --mac-address.
func (n *Network) conflist(ipamDir string) ([]byte, error) {
	rangeSet := func(subnet netip.Prefix, gw netip.Addr, ipRange netip.Prefix) []map[string]any {
		r := map[string]any{"subnet": subnet.String(), "gateway": gw.String()}
		if ipRange.IsValid() {
			start := ipRange.Masked().Addr().Next()
			r["rangeStart"] = start.String()
			r["rangeEnd"] = lastAddr(ipRange).Prev().String()
		}
		return []map[string]any{r}
	}
	ranges := [][]map[string]any{rangeSet(n.Subnet, n.Gateway, n.IPRange)}
	var routes []map[string]any
	if !n.Internal {
		routes = append(routes, map[string]any{"dst": "0.0.0.0/0"})
	}
	if n.Subnet6.IsValid() {
		ranges = append(ranges, rangeSet(n.Subnet6, n.Gateway6, netip.Prefix{}))
		if !n.Internal {
			routes = append(routes, map[string]any{"dst": "::/0"})
		}
	}
	ipam := map[string]any{"type": "host-local", "ranges": ranges, "dataDir": ipamDir}
	if routes != nil {
		ipam["routes"] = routes
	}
	mtu := 0
	if v := n.Options["com.docker.network.driver.mtu"]; v != "" {
		_, _ = fmt.Sscan(v, &mtu)
	}
	bridge := map[string]any{
		"type": "bridge", "bridge": n.Bridge, "isGateway": true,
		"isDefaultGateway": false, "ipMasq": !n.Internal, "hairpinMode": true,
		"ipam": ipam,
	}
	if mtu > 0 {
		bridge["mtu"] = mtu
	}
	plugins := []map[string]any{
		bridge,
		{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}, "snat": true},
		{"type": "firewall", "backend": "iptables"},
		{"type": "tuning", "capabilities": map[string]bool{"mac": true}},
	}
	return json.MarshalIndent(map[string]any{
		"cniVersion": cniVersion, "name": n.Name, "plugins": plugins,
	}, "", "  ")
}

// lastAddr is the highest address of p (its broadcast address for IPv4).
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	bits := p.Bits()
	for i := range b {
		for j := 0; j < 8; j++ {
			if i*8+j >= bits {
				b[i] |= 0x80 >> j
			}
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// overlaps reports whether two prefixes share an address.
func overlaps(a, b netip.Prefix) bool {
	return a.Overlaps(b)
}
