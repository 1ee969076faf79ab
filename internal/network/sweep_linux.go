package network

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
)

// Sweeping berth's firewall rules whose bridge or container is gone.
//
// Rules outlive what they were made for when the host changes under
// berth: a bridge deleted with `ip link del` (the rules naming it stay),
// an instance's directories deleted while its containers ran (no teardown
// will ever read their records), a berth killed between its plugin's ADD
// and its own bookkeeping. A stale DNAT rule is not harmless: it keeps
// hijacking its host port for an address nobody answers.
//
// Only rules berth made are touched, recognised without guessing:
//
//   - rules in berth's own chains (BERTH-FORWARD, BERTH-ISOLATION-1/2,
//     BERTH-POSTROUTING) that name, with -i or -o, an interface that does
//     not exist; berth's rules in other chains are only jumps to these,
//     which stay;
//   - a published-ports jump in BERTH-HOSTPORTS (commented berth:<ID>)
//     and its BERTH-DN-<ID[:12]> chain when the container's host veth is
//     gone or no longer in a bridge (its bridge was deleted); and
//     BERTH-DN- chains nothing jumps to;
//   - for CNI networks (whose plugins name chains CNI-…, as podman's do),
//     only the rules commented with the ID of a container that berth
//     attached and whose namespace is gone: every CNI ADD is recorded
//     first in a host-wide marker (RulesMarkerDir/cni.<ID>.<ifname>, a
//     symlink to the namespace) that a successful DEL removes, and the
//     firewall plugin's uncommented CNI-FORWARD rules are recognised by
//     the addresses recorded beside it after ADD (cniips.<ID>.<ifname>).
//
// Rules always follow what they name (a bridge before its rules, a veth
// before its DNAT chain, a namespace before its CNI ADD), so a sweep that
// reads the rules and then finds what they name missing cannot race with
// a network being set up: what it read was made after what it checks.
//
// Markers also make the sweep cheap to skip: RulesMarkerDir holds
// bridge.<name> for every bridge berth put rules on (removed with the
// network), so StaleRulesSuspected answers with one readdir and a stat
// per marker, and the first network store a process opens sweeps only
// when a marker names something gone.

// RulesMarkerDir holds the host-wide markers of what berth put rules on.
// Like the rules, it lives on /run and a reboot clears it.
var RulesMarkerDir = "/run/berth-rules"

func bridgeMarker(bridge string) string { return filepath.Join(RulesMarkerDir, "bridge."+bridge) }

func cniMarker(containerID, ifName string) string {
	return filepath.Join(RulesMarkerDir, "cni."+containerID+"."+ifName)
}

func cniIPsFile(containerID, ifName string) string {
	return filepath.Join(RulesMarkerDir, "cniips."+containerID+"."+ifName)
}

// cniMark is what a CNI attachment's markers record.
type cniMark struct {
	NetNS string
	IPs   []string // bare addresses, known after ADD
}

// markBridge records that berth puts rules on bridge; failures are
// ignored: the sweep of `network prune` does not need markers for
// bridges, only the cheap check does.
func markBridge(bridge string) {
	if err := os.MkdirAll(RulesMarkerDir, 0o755); err == nil {
		_ = os.WriteFile(bridgeMarker(bridge), nil, 0o644)
	}
}

func unmarkBridge(bridge string) { _ = os.Remove(bridgeMarker(bridge)) }

// markCNI records a CNI attachment before its ADD: without the marker its
// rules could never be told from another CNI user's. The marker is a
// symlink to the namespace, so the check on every process's first store
// open costs a readlink and a statfs per CNI attachment, not a file read
// and a JSON decode; the addresses (m.IPs, after ADD) go beside it.
func markCNI(containerID, ifName string, m cniMark) error {
	if err := os.MkdirAll(RulesMarkerDir, 0o755); err != nil {
		return fmt.Errorf("rules marker: %w", err)
	}
	if len(m.IPs) > 0 {
		if err := writeFileAtomic(cniIPsFile(containerID, ifName), []byte(strings.Join(m.IPs, "\n")), 0o644); err != nil {
			return fmt.Errorf("rules marker: %w", err)
		}
	}
	p := cniMarker(containerID, ifName)
	tmp := p + ".tmp"
	_ = os.Remove(tmp)
	if err := os.Symlink(m.NetNS, tmp); err != nil {
		return fmt.Errorf("rules marker: %w", err)
	}
	if err := os.Rename(tmp, p); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("rules marker: %w", err)
	}
	return nil
}

func unmarkCNI(containerID, ifName string) {
	_ = os.Remove(cniMarker(containerID, ifName))
	_ = os.Remove(cniIPsFile(containerID, ifName))
}

func linkExists(name string) bool {
	_, err := os.Lstat("/sys/class/net/" + name)
	return err == nil
}

// vethInBridge reports whether a native container's host veth for eth0
// (the interface published ports go to) exists and is still a bridge
// port: deleting a bridge leaves its ports behind, detached.
func vethInBridge(containerID string) bool {
	_, err := os.Stat("/sys/class/net/" + vethName(containerID, "eth0") + "/master")
	return err == nil
}

// staleCNIMarker returns the namespace a CNI marker names when it is
// gone, ok false for another marker or a live namespace.
func staleCNIMarker(name string) (id, ifName, netns string, ok bool) {
	rest, isCNI := strings.CutPrefix(name, "cni.")
	if !isCNI || strings.HasSuffix(rest, ".tmp") {
		return "", "", "", false
	}
	ns, err := os.Readlink(filepath.Join(RulesMarkerDir, name))
	if err != nil || IsNetNS(ns) {
		return "", "", "", false
	}
	id, ifName, _ = strings.Cut(rest, ".")
	return id, ifName, ns, true
}

// staleCNI returns the CNI markers whose namespace is gone, by container
// ID.
func staleCNI() map[string][]cniMark {
	ents, _ := os.ReadDir(RulesMarkerDir)
	out := map[string][]cniMark{}
	for _, e := range ents {
		id, ifName, ns, ok := staleCNIMarker(e.Name())
		if !ok {
			continue
		}
		m := cniMark{NetNS: ns}
		if b, err := os.ReadFile(cniIPsFile(id, ifName)); err == nil {
			m.IPs = strings.Fields(string(b))
		}
		out[id] = append(out[id], m)
	}
	return out
}

// StaleRulesSuspected reports, from the markers alone, whether a sweep
// would find something: a marked bridge that is gone, or a CNI
// attachment whose namespace is. It costs a readdir, an lstat per
// marked bridge and a readlink and a statfs per CNI attachment.
func StaleRulesSuspected() bool {
	ents, err := os.ReadDir(RulesMarkerDir)
	if err != nil {
		return false
	}
	for _, e := range ents {
		if br, ok := strings.CutPrefix(e.Name(), "bridge."); ok && !linkExists(br) {
			return true
		}
		if _, _, _, ok := staleCNIMarker(e.Name()); ok {
			return true
		}
	}
	return false
}

var sweepOnce sync.Once

// sweepIfSuspected sweeps once per process, when the markers say so.
func sweepIfSuspected() {
	sweepOnce.Do(func() {
		if StaleRulesSuspected() {
			_, _ = SweepStaleRules()
		}
	})
}

// SweepReport lists what a sweep removed, as "<table> <rule>" in
// iptables-save's words (ip6tables' prefixed "ip6 ").
type SweepReport struct {
	Rules  []string
	Chains []string
}

var sweepMu sync.Mutex

// SweepStaleRules removes berth's stale rules and chains (see above) for
// IPv4 and, where ip6tables exists, IPv6, then the markers of what is
// gone.
func SweepStaleRules() (SweepReport, error) {
	sweepMu.Lock()
	defer sweepMu.Unlock()
	var rep SweepReport
	if _, err := exec.LookPath("iptables-save"); err != nil {
		return rep, nil // no iptables: berth made no rules
	}
	cni := staleCNI()
	var errs []error
	for _, bin := range []string{"iptables", "ip6tables"} {
		if _, err := exec.LookPath(bin + "-save"); err != nil {
			continue
		}
		out, err := exec.Command(bin+"-save", "-t", "filter").Output()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s-save: %w", bin, err))
			continue
		}
		nat, err := exec.Command(bin+"-save", "-t", "nat").Output()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s-save: %w", bin, err))
			continue
		}
		prefix := ""
		if bin == "ip6tables" {
			prefix = "ip6 "
		}
		for _, t := range []struct {
			table string
			save  []byte
		}{{"filter", out}, {"nat", nat}} {
			plan := planSweep(t.table, t.save, linkExists, vethInBridge, cni)
			if plan.empty() {
				continue
			}
			if err := plan.apply(bin); err != nil {
				errs = append(errs, err)
				continue
			}
			for _, r := range plan.rules {
				rep.Rules = append(rep.Rules, prefix+t.table+" "+r)
			}
			for _, c := range plan.chains {
				rep.Chains = append(rep.Chains, prefix+t.table+" "+c)
			}
		}
	}
	if len(errs) > 0 {
		return rep, errors.Join(errs...)
	}
	// Markers go only once their rules have.
	ents, _ := os.ReadDir(RulesMarkerDir)
	for _, e := range ents {
		if br, ok := strings.CutPrefix(e.Name(), "bridge."); ok && !linkExists(br) {
			unmarkBridge(br)
		}
		if rest, ok := strings.CutPrefix(e.Name(), "cni."); ok {
			id, ifName, _ := strings.Cut(rest, ".")
			if _, stale := cni[id]; stale {
				unmarkCNI(id, ifName)
			}
		}
	}
	return rep, nil
}

// sweepPlan is what to remove from one table.
type sweepPlan struct {
	table  string
	rules  []string // "-A CHAIN …" lines of rules to delete
	chains []string // chains to flush and delete
}

func (p sweepPlan) empty() bool { return len(p.rules) == 0 && len(p.chains) == 0 }

// ownChains are berth's chains whose rules name bridges.
var ownChains = map[string]bool{fwdChain: true, isoChain1: true, isoChain2: true, postChain: true}

var (
	berthComment = regexp.MustCompile(`berth:([0-9a-f]{12,64})`)
	cniComment   = regexp.MustCompile(`id: \\"([0-9a-f]{12,64})\\"`)
)

// planSweep reads one table's iptables-save output and decides what is
// stale; exists says whether an interface exists, liveVeth whether a
// native container's published ports still have a bridged veth, and
// cni lists the CNI attachments whose namespace is gone.
func planSweep(table string, save []byte, exists, liveVeth func(string) bool, cni map[string][]cniMark) sweepPlan {
	p := sweepPlan{table: table}
	declared := map[string]bool{}
	jumped := map[string]bool{}
	drop := map[string]bool{}
	type rule struct {
		line, chain string
		f           []string
	}
	var rules []rule
	staleIPs := map[string]bool{}
	for _, ms := range cni {
		for _, m := range ms {
			for _, ip := range m.IPs {
				staleIPs[ip] = true
			}
		}
	}
	sc := bufio.NewScanner(bytes.NewReader(save))
	for sc.Scan() {
		line := sc.Text()
		if c, ok := strings.CutPrefix(line, ":"); ok {
			name, _, _ := strings.Cut(c, " ")
			declared[name] = true
			continue
		}
		if !strings.HasPrefix(line, "-A ") {
			continue
		}
		f := splitRule(line)
		if len(f) < 2 {
			continue
		}
		r := rule{line: line, chain: f[1], f: f}
		rules = append(rules, r)
		if j := target(f); j != "" {
			jumped[j] = true
		}
	}
	var dels []rule
	for _, r := range rules {
		stale := false
		switch {
		case ownChains[r.chain]:
			for i := 2; i+1 < len(r.f); i++ {
				if (r.f[i] == "-i" || r.f[i] == "-o") && !exists(r.f[i+1]) {
					stale = true
				}
			}
		case r.chain == hostPortChain:
			if m := berthComment.FindStringSubmatch(r.line); m != nil && !liveVeth(m[1]) {
				stale = true
				if j := target(r.f); strings.HasPrefix(j, dnatPrefix) {
					drop[j] = true
				}
			}
		case table == "filter" && r.chain == "CNI-FORWARD":
			for i := 2; i+1 < len(r.f); i++ {
				if (r.f[i] == "-s" || r.f[i] == "-d") && staleIPs[strings.TrimSuffix(strings.TrimSuffix(r.f[i+1], "/32"), "/128")] {
					stale = true
				}
			}
		default:
			if m := cniComment.FindStringSubmatch(r.line); m != nil {
				if _, ok := cni[m[1]]; ok {
					stale = true
					if j := target(r.f); strings.HasPrefix(j, "CNI-") && j != "CNI-HOSTPORT-MASQ" && j != "CNI-HOSTPORT-SETMARK" {
						drop[j] = true
					}
				}
			}
		}
		if stale {
			dels = append(dels, r)
		}
	}
	// A crashed removal can leave a port chain nothing jumps to.
	for c := range declared {
		if strings.HasPrefix(c, dnatPrefix) && !jumped[c] {
			drop[c] = true
		}
	}
	for _, r := range dels {
		if !drop[r.chain] { // flushed with its chain
			p.rules = append(p.rules, r.line)
		}
	}
	for c := range drop {
		if declared[c] {
			p.chains = append(p.chains, c)
		}
	}
	return p
}

// target is the rule's -j target, "" without one.
func target(f []string) string {
	for i := range f {
		if (f[i] == "-j" || f[i] == "-g") && i+1 < len(f) {
			return f[i+1]
		}
	}
	return ""
}

// apply removes the plan in one <bin>-restore --noflush (declaring a
// chain flushes it; the table changes all at once or not at all). Should
// that fail, because another process removed one of the rules meanwhile,
// each rule and chain goes on its own, missing ones ignored.
func (p sweepPlan) apply(bin string) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "*%s\n", p.table)
	for _, c := range p.chains {
		fmt.Fprintf(&b, ":%s - [0:0]\n", c)
	}
	for _, r := range p.rules {
		fmt.Fprintf(&b, "-D%s\n", strings.TrimPrefix(r, "-A"))
	}
	for _, c := range p.chains {
		fmt.Fprintf(&b, "-X %s\n", c)
	}
	b.WriteString("COMMIT\n")
	if restore(bin, b.Bytes()) == nil {
		return nil
	}
	for _, r := range p.rules {
		f := splitRule(r)
		_ = xtables(bin, append([]string{"-t", p.table, "-D"}, f[1:]...)...)
	}
	var errs []error
	for _, c := range p.chains {
		_ = xtables(bin, "-t", p.table, "-F", c)
		if err := xtables(bin, "-t", p.table, "-X", c); err != nil && xtables(bin, "-t", p.table, "-n", "-L", c) == nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
