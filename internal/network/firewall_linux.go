package network

import (
	"bufio"
	"bytes"
	"fmt"
	"os/exec"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/vishvananda/netlink"
)

// Isolation chains are shared by every berth instance on the host (the
// rules name bridges, which are unique per instance), so networks of two
// instances are isolated from each other too.
const (
	isoChain1 = "BERTH-ISOLATION-1"
	isoChain2 = "BERTH-ISOLATION-2"
)

// iptables runs iptables with -w (wait for the xtables lock, which the CNI
// plugins take as well).
func iptables(args ...string) error {
	out, err := exec.Command("iptables", append([]string{"-w"}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("iptables %s: %s: %w", strings.Join(args, " "), strings.TrimSpace(string(out)), err)
	}
	return nil
}

// ensureRule appends (or with insert, inserts first) a rule unless -C
// finds it already there.
func ensureRule(table, chain string, insert bool, rule ...string) error {
	if iptables(append([]string{"-t", table, "-C", chain}, rule...)...) == nil {
		return nil
	}
	op := "-A"
	if insert {
		op = "-I"
	}
	return iptables(append([]string{"-t", table, op, chain}, rule...)...)
}

func ensureChain(table, chain string) error {
	if iptables("-t", table, "-n", "-L", chain) == nil {
		return nil
	}
	if err := iptables("-t", table, "-N", chain); err != nil && iptables("-t", table, "-n", "-L", chain) != nil {
		return err
	}
	return nil
}

// isolationRules are n's rules in the isolation chains. Packets that enter
// from n's bridge and leave through another berth bridge are dropped in
// stage 2; an internal network drops everything that leaves its bridge
// for, or arrives from, anywhere else.
func isolationRules(n *Network) [][]string {
	br := n.Bridge
	rules := [][]string{
		{isoChain1, "-i", br, "!", "-o", br, "-j", isoChain2},
		{isoChain2, "-o", br, "-j", "DROP"},
	}
	if n.Internal {
		rules = append(rules,
			[]string{isoChain1, "-i", br, "!", "-o", br, "-j", "DROP"},
			[]string{isoChain1, "-o", br, "!", "-i", br, "-j", "DROP"})
	}
	return rules
}

// ensureIsolation installs the isolation chains, their jumps and n's rules.
// The jump is both first in FORWARD and in CNI-ADMIN, the chain the CNI
// firewall plugin reserves for administrators and evaluates before its own
// per-container ACCEPT rules, whichever of the two was inserted last.
func ensureIsolation(n *Network) error {
	if _, err := exec.LookPath("iptables"); err != nil {
		return fmt.Errorf("iptables not found (install iptables): %w", errdefs.ErrUnavailable)
	}
	// Before the first rule: a marker of a bridge that is gone is what
	// tells the next process to sweep (sweep_linux.go).
	markBridge(n.Bridge)
	for _, c := range []string{isoChain1, isoChain2, "CNI-ADMIN"} {
		if err := ensureChain("filter", c); err != nil {
			return err
		}
	}
	if err := ensureRule("filter", "FORWARD", true, "-j", isoChain1); err != nil {
		return err
	}
	if err := ensureRule("filter", "CNI-ADMIN", true, "-j", isoChain1); err != nil {
		return err
	}
	for _, r := range isolationRules(n) {
		// Stage-2 drops and internal drops must precede the RETURNs
		// nobody adds: chains end by falling through, so order among
		// berth's own rules does not matter.
		if err := ensureRule("filter", r[0], false, r[1:]...); err != nil {
			return err
		}
	}
	return nil
}

// removeIsolation deletes n's rules (missing rules are fine).
func removeIsolation(n *Network) error {
	for _, r := range isolationRules(n) {
		for iptables(append([]string{"-t", "filter", "-D", r[0]}, r[1:]...)...) == nil {
		}
	}
	unmarkBridge(n.Bridge)
	return nil
}

// deleteLink removes a network interface if it exists.
func deleteLink(name string) {
	if l, err := netlink.LinkByName(name); err == nil {
		_ = netlink.LinkDel(l)
	}
}

// SweepContainerRules deletes nat rules and chains that CNI plugins made
// for containerID and could not remove because the container's namespace
// (and with it the addresses the bridge plugin's masquerade teardown
// reads) vanished before DEL, and the native driver's port chain when its
// one-call removal failed. The plugins and the native driver tag every
// rule with a comment holding the container ID.
func SweepContainerRules(containerID string) error {
	return sweepRules("iptables", containerID)
}

// sweepRules is SweepContainerRules for iptables or ip6tables.
func sweepRules(bin, containerID string) error {
	out, err := exec.Command(bin+"-save", "-t", "nat").Output()
	if err != nil {
		return fmt.Errorf("%s-save: %w", bin, err)
	}
	var dels [][]string
	chains := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "-A ") || !strings.Contains(line, containerID) {
			continue
		}
		f := splitRule(line)
		dels = append(dels, append([]string{"-t", "nat", "-D"}, f[1:]...))
		for i := range f {
			if f[i] == "-j" && i+1 < len(f) && (strings.HasPrefix(f[i+1], "CNI-") && f[i+1] != "CNI-HOSTPORT-MASQ" && f[i+1] != "CNI-HOSTPORT-SETMARK" || strings.HasPrefix(f[i+1], dnatPrefix)) {
				chains[f[i+1]] = true
			}
		}
	}
	for _, d := range dels {
		_ = xtables(bin, d...)
	}
	for c := range chains {
		_ = xtables(bin, "-t", "nat", "-F", c)
		_ = xtables(bin, "-t", "nat", "-X", c)
	}
	return nil
}

// splitRule splits an iptables-save line into arguments, keeping quoted
// comments whole.
func splitRule(line string) []string {
	var out []string
	var cur strings.Builder
	inQ := false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '\\' && inQ && i+1 < len(line) && line[i+1] == '"':
			// iptables-save escapes quotes inside a quoted comment
			// (portmap's `dnat name: \"net\" id: \"…\"`).
			cur.WriteByte('"')
			i++
		case c == '"':
			inQ = !inQ
		case c == ' ' && !inQ:
			if cur.Len() > 0 {
				out = append(out, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteByte(c)
		}
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}
