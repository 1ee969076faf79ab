package network

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
)

// The native driver's iptables layout. Everything a network needs is
// installed once, when its bridge is set up; a container adds rules only
// for its published ports, in one chain of its own.
//
//	filter FORWARD            -j BERTH-FORWARD
//	filter BERTH-FORWARD      -i <bridge> -o <bridge> -j ACCEPT   per network, first: the
//	                          fast path of container-to-container traffic on one
//	                          network, which walked the isolation chain (a rule per
//	                          berth bridge on the host) before
//	                          -j BERTH-ISOLATION-1      (isolation before any other accept)
//	                          -o <bridge> -j ACCEPT, -i <bridge> -j ACCEPT   per network
//	nat    POSTROUTING        -j BERTH-POSTROUTING
//	nat    BERTH-POSTROUTING  -m mark --mark 0x2000/0x2000 -j MASQUERADE  (hairpin, 127.0.0.1)
//	                          -s <subnet> ! -o <bridge> -j MASQUERADE    per network, not --internal
//	nat    PREROUTING, OUTPUT -m addrtype --dst-type LOCAL -j BERTH-HOSTPORTS
//	nat    BERTH-HOSTPORTS    -m comment --comment berth:<container ID> -j BERTH-DN-<ID[:12]>
//	nat    BERTH-DN-<ID[:12]> per published port: mark hairpin and loopback sources, DNAT
//
// IPv6 networks get the same in ip6tables, published ports included
// (reachable on the host's IPv6 addresses; ::1 cannot be DNATed to
// another interface: IPv6 has no route_localnet).
const (
	fwdChain      = "BERTH-FORWARD"
	postChain     = "BERTH-POSTROUTING"
	hostPortChain = "BERTH-HOSTPORTS"
	dnatPrefix    = "BERTH-DN-"
	// masqMark marks connections to masquerade after DNAT: the bit
	// portmap uses for the same purpose, so the two never disagree.
	masqMark = "0x2000/0x2000"
)

// xtables runs one of iptables/ip6tables with -w.
func xtables(bin string, args ...string) error {
	out, err := exec.Command(bin, append([]string{"-w"}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %s: %w", bin, strings.Join(args, " "), strings.TrimSpace(string(out)), err)
	}
	return nil
}

func xtEnsureChain(bin, table, chain string) error {
	if xtables(bin, "-t", table, "-n", "-L", chain) == nil {
		return nil
	}
	if err := xtables(bin, "-t", table, "-N", chain); err != nil && xtables(bin, "-t", table, "-n", "-L", chain) != nil {
		return err
	}
	return nil
}

func xtEnsureRule(bin, table, chain string, insert bool, rule ...string) error {
	if xtables(bin, append([]string{"-t", table, "-C", chain}, rule...)...) == nil {
		return nil
	}
	op := "-A"
	if insert {
		op = "-I"
	}
	return xtables(bin, append([]string{"-t", table, op, chain}, rule...)...)
}

// ensureNetworkRules installs n's share of the layout above (idempotent:
// every rule is checked before it is added).
func ensureNetworkRules(n *Network) error {
	if _, err := exec.LookPath("iptables"); err != nil {
		return fmt.Errorf("iptables not found (install iptables): %w", errdefs.ErrUnavailable)
	}
	if err := ensureIsolation(n); err != nil {
		return err
	}
	fams := []struct {
		bin    string
		subnet netip.Prefix
	}{{"iptables", n.Subnet}}
	if n.Subnet6.IsValid() {
		fams = append(fams, struct {
			bin    string
			subnet netip.Prefix
		}{"ip6tables", n.Subnet6})
	}
	for _, f := range fams {
		if f.bin == "ip6tables" {
			// The v4 isolation chains come from ensureIsolation; IPv6
			// gets the same rules.
			for _, c := range []string{isoChain1, isoChain2} {
				if err := xtEnsureChain(f.bin, "filter", c); err != nil {
					return err
				}
			}
			for _, r := range isolationRules(n) {
				if err := xtEnsureRule(f.bin, "filter", r[0], false, r[1:]...); err != nil {
					return err
				}
			}
		}
		steps := []struct {
			table, chain string
			insert       bool
			rule         []string
		}{
			{"filter", "FORWARD", true, []string{"-j", fwdChain}},
			{"filter", fwdChain, true, []string{"-j", isoChain1}},
			// Inserted after the isolation jump, so above it. Traffic
			// that enters and leaves by the same bridge stays on one
			// network: isolation has nothing to say about it.
			{"filter", fwdChain, true, []string{"-i", n.Bridge, "-o", n.Bridge, "-j", "ACCEPT"}},
			{"filter", fwdChain, false, []string{"-o", n.Bridge, "-j", "ACCEPT"}},
			{"filter", fwdChain, false, []string{"-i", n.Bridge, "-j", "ACCEPT"}},
			{"nat", "POSTROUTING", true, []string{"-j", postChain}},
			{"nat", postChain, true, []string{"-m", "mark", "--mark", masqMark, "-j", "MASQUERADE"}},
		}
		if !n.Internal {
			steps = append(steps, struct {
				table, chain string
				insert       bool
				rule         []string
			}{"nat", postChain, false, []string{"-s", f.subnet.String(), "!", "-o", n.Bridge, "-j", "MASQUERADE"}})
		}
		{
			for _, c := range []string{"PREROUTING", "OUTPUT"} {
				steps = append(steps, struct {
					table, chain string
					insert       bool
					rule         []string
				}{"nat", c, true, []string{"-m", "addrtype", "--dst-type", "LOCAL", "-j", hostPortChain}})
			}
		}
		for _, c := range [][2]string{{"filter", fwdChain}, {"nat", postChain}, {"nat", hostPortChain}} {
			if err := xtEnsureChain(f.bin, c[0], c[1]); err != nil {
				return err
			}
		}
		for _, st := range steps {
			if err := xtEnsureRule(f.bin, st.table, st.chain, st.insert, st.rule...); err != nil {
				return fmt.Errorf("network %s: %w", n.Name, err)
			}
		}
	}
	return nil
}

// removeNetworkRules deletes n's own rules (the shared chains stay).
func removeNetworkRules(n *Network) {
	del := func(bin, table, chain string, rule ...string) {
		for xtables(bin, append([]string{"-t", table, "-D", chain}, rule...)...) == nil {
		}
	}
	for _, f := range []struct {
		bin    string
		subnet netip.Prefix
	}{{"iptables", n.Subnet}, {"ip6tables", n.Subnet6}} {
		if !f.subnet.IsValid() {
			continue
		}
		del(f.bin, "filter", fwdChain, "-i", n.Bridge, "-o", n.Bridge, "-j", "ACCEPT")
		del(f.bin, "filter", fwdChain, "-o", n.Bridge, "-j", "ACCEPT")
		del(f.bin, "filter", fwdChain, "-i", n.Bridge, "-j", "ACCEPT")
		del(f.bin, "nat", postChain, "-s", f.subnet.String(), "!", "-o", n.Bridge, "-j", "MASQUERADE")
		if f.bin == "ip6tables" {
			for _, r := range isolationRules(n) {
				del(f.bin, "filter", r[0], r[1:]...)
			}
		}
	}
}

func dnatChain(containerID string) string {
	return dnatPrefix + containerID[:min(12, len(containerID))]
}

func portComment(containerID string) string { return "berth:" + containerID }

// publishPorts installs containerID's DNAT chain in one iptables-restore
// (--noflush: only the chains it names are touched; declaring the
// container's chain flushes a leftover of a crashed attach), and on a
// dual-stack network (ip6 valid) the same in one ip6tables-restore.
func publishPorts(n *Network, containerID string, ip, ip6 netip.Addr, ports []PortMapping) error {
	for _, p := range ports {
		if a, err := netip.ParseAddr(p.HostIP); err == nil && a.Is6() && !a.Is4In6() && !ip6.IsValid() {
			return fmt.Errorf("publish %s: network %s has no IPv6: %w", p, n.Name, errdefs.ErrInvalidArgument)
		}
	}
	if err := publishFamily("iptables", n.Subnet, containerID, ip, ports); err != nil {
		return err
	}
	if ip6.IsValid() {
		return publishFamily("ip6tables", n.Subnet6, containerID, ip6, ports)
	}
	return nil
}

func publishFamily(bin string, subnet netip.Prefix, containerID string, ip netip.Addr, ports []PortMapping) error {
	v6 := bin == "ip6tables"
	ch := dnatChain(containerID)
	var b bytes.Buffer
	fmt.Fprintf(&b, "*nat\n:%s - [0:0]\n", ch)
	for _, p := range ports {
		proto := p.Protocol
		match := fmt.Sprintf("-p %s -m %s --dport %d", proto, proto, p.HostPort)
		if p.HostIP != "" {
			a, err := netip.ParseAddr(p.HostIP)
			if err != nil {
				return fmt.Errorf("invalid host IP %q: %w", p.HostIP, errdefs.ErrInvalidArgument)
			}
			a = a.Unmap()
			if a.Is6() != v6 {
				continue // published on the other family only
			}
			if !a.IsUnspecified() {
				match += " -d " + netip.PrefixFrom(a, a.BitLen()).String()
			}
		}
		// Sources that would get the reply from the container directly
		// (a container on the bridge, hairpin) or that the container
		// cannot answer (127.0.0.1) are masqueraded to the gateway.
		fmt.Fprintf(&b, "-A %s %s -s %s -j MARK --set-xmark %s\n", ch, match, subnet.Masked(), masqMark)
		if !v6 {
			fmt.Fprintf(&b, "-A %s %s -s 127.0.0.0/8 -j MARK --set-xmark %s\n", ch, match, masqMark)
		}
		fmt.Fprintf(&b, "-A %s %s -j DNAT --to-destination %s\n", ch, match, netip.AddrPortFrom(ip, p.ContainerPort))
	}
	fmt.Fprintf(&b, "-A %s -m comment --comment %s -j %s\nCOMMIT\n", hostPortChain, strconv.Quote(portComment(containerID)), ch)
	return restore(bin, b.Bytes())
}

// unpublishPorts removes containerID's DNAT chain and its jump in one
// iptables-restore (and one ip6tables-restore with v6); when that fails
// (the jump is missing: an attach killed half-way, or a second teardown)
// it sweeps by container ID.
func unpublishPorts(containerID string, v6 bool) error {
	bins := []string{"iptables"}
	if v6 {
		bins = append(bins, "ip6tables")
	}
	var errs []error
	for _, bin := range bins {
		ch := dnatChain(containerID)
		in := fmt.Sprintf("*nat\n:%s - [0:0]\n-D %s -m comment --comment %s -j %s\n-X %s\nCOMMIT\n",
			ch, hostPortChain, strconv.Quote(portComment(containerID)), ch, ch)
		if restore(bin, []byte(in)) == nil {
			continue
		}
		if err := sweepRules(bin, containerID); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func restore(bin string, in []byte) error {
	cmd := exec.Command(bin+"-restore", "-w", "--noflush")
	cmd.Stdin = bytes.NewReader(in)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s-restore: %s: %w", bin, strings.TrimSpace(string(out)), err)
	}
	return nil
}
