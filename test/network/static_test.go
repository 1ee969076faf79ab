//go:build linux

package network_test

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// dualNet creates a dual-stack network with a random ULA /64 (other tests
// on the host run IPv6 networks too) and returns its two subnets.
func (e *env) dualNet(name string) (v4, v6 netip.Prefix) {
	e.t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	sub6 := fmt.Sprintf("fd%02x:%02x%02x:%02x::/64", b[0], b[1], b[2], b[3])
	e.ok("network", "create", "--subnet", sub6, name)
	e.t.Cleanup(func() { e.run(nil, "network", "rm", name) })
	for _, s := range strings.Fields(e.ok("network", "inspect", "--format", "{{range .IPAM.Config}}{{.Subnet}} {{end}}", name)) {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			e.t.Fatalf("network %s: subnet %q: %v", name, s, err)
		}
		if p.Addr().Is4() {
			v4 = p
		} else {
			v6 = p
		}
	}
	if !v4.IsValid() || !v6.IsValid() {
		e.t.Fatalf("network %s is not dual-stack: %s and %s", name, v4, v6)
	}
	return v4, v6
}

// nthAddr is the k-th address of p (k < 256).
func nthAddr(p netip.Prefix, k byte) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	b[len(b)-1] += k
	a, _ := netip.AddrFromSlice(b)
	return a
}

// leased reports whether the instance's IPAM holds address a on network.
func (e *env) leased(network string, a netip.Addr) bool {
	_, err := os.Lstat(filepath.Join(e.state, "network", "ipam", network, a.String()))
	return !errors.Is(err, os.ErrNotExist)
}

// TestDualStackStaticAddresses: `run --ip X --ip6 Y` on a dual-stack
// network gives the container exactly those two addresses, shown by
// inspect and kept across a restart, as Docker does; a second container
// asking for the same IPv6 address fails without keeping its IPv4
// address; addresses the network cannot hold are refused with dockerd's
// words.
func TestDualStackStaticAddresses(t *testing.T) {
	e := newEnv(t)
	sub4, sub6 := e.dualNet("dss")
	ip4, ip6 := nthAddr(sub4, 77), nthAddr(sub6, 0x77)
	e.ok("run", "-d", "--name", "s1", "--network", "dss", "--ip", ip4.String(), "--ip6", ip6.String(), "busybox", "sleep", "300")
	defer e.run(nil, "rm", "-f", "s1")

	checkAddrs := func(when string) {
		t.Helper()
		out := e.ok("exec", "s1", "ip", "-o", "addr", "show", "eth0")
		for _, p := range []netip.Prefix{netip.PrefixFrom(ip4, sub4.Bits()), netip.PrefixFrom(ip6, sub6.Bits())} {
			if !strings.Contains(out, " "+p.String()+" ") {
				t.Fatalf("%s: eth0 lacks %s:\n%s", when, p, out)
			}
		}
		for _, tc := range []struct{ format, want string }{
			{`{{(index .NetworkSettings.Networks "dss").IPAddress}}`, ip4.String()},
			{`{{(index .NetworkSettings.Networks "dss").GlobalIPv6Address}}`, ip6.String()},
			{`{{(index .NetworkSettings.Networks "dss").IPAMConfig.IPv4Address}}`, ip4.String()},
			{`{{(index .NetworkSettings.Networks "dss").IPAMConfig.IPv6Address}}`, ip6.String()},
		} {
			if got := strings.TrimSpace(e.ok("inspect", "--format", tc.format, "s1")); got != tc.want {
				t.Errorf("%s: inspect %s = %s, want %s", when, tc.format, got, tc.want)
			}
		}
		if hosts := e.ok("exec", "s1", "cat", "/etc/hosts"); !strings.Contains(hosts, ip4.String()+"\t") {
			t.Errorf("%s: /etc/hosts lacks %s:\n%s", when, ip4, hosts)
		}
	}
	checkAddrs("run")
	e.ok("restart", "-t", "0", "s1")
	checkAddrs("restart")

	// The same IPv6 address for a second container: refused, and the
	// IPv4 address it asked for is not left leased.
	other4 := nthAddr(sub4, 78)
	_, stderr, code := e.run(nil, "run", "-d", "--name", "s2", "--network", "dss", "--ip", other4.String(), "--ip6", ip6.String(), "busybox", "sleep", "300")
	defer e.run(nil, "rm", "-f", "s2")
	if code == 0 || !strings.Contains(stderr, "Address already in use") {
		t.Fatalf("second container with %s: exit %d, stderr %q; want Address already in use", ip6, code, stderr)
	}
	if e.leased("dss", other4) {
		t.Fatalf("the refused container kept its IPv4 lease %s", other4)
	}
	e.ok("run", "-d", "--name", "s3", "--network", "dss", "--ip", other4.String(), "busybox", "sleep", "300")
	defer e.run(nil, "rm", "-f", "s3")
	if got := e.ipOf("s3"); got != other4.String() {
		t.Fatalf("s3 has %s, want %s", got, other4)
	}
	// s1 answers at its static IPv6 address.
	if out, errOut, code := e.run(nil, "exec", "s3", "ping", "-c1", "-W3", ip6.String()); code != 0 {
		t.Fatalf("ping %s: exit %d: %s%s", ip6, code, out, errOut)
	}

	e.ok("network", "create", "v4only")
	defer e.run(nil, "network", "rm", "v4only")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"IPv4 outside the subnets", []string{"--network", "dss", "--ip", "192.0.2.9", "--ip6", nthAddr(sub6, 0x79).String()},
			"no configured subnet or ip-range contain the IP address 192.0.2.9"},
		{"IPv6 outside the subnets", []string{"--network", "dss", "--ip", nthAddr(sub4, 79).String(), "--ip6", "fd00:dead::9"},
			"no configured subnet or ip-range contain the IP address fd00:dead::9"},
		{"IPv6 on a network without IPv6", []string{"--network", "v4only", "--ip6", "fd00:dead::9"},
			"user specified IP address is supported only when connecting to networks with user configured subnets"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append(append([]string{"create"}, tc.args...), "busybox", "true")
			_, stderr, code := e.run(nil, args...)
			if code != 125 || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want 125 and %q", code, stderr, tc.want)
			}
		})
	}
}

// TestConnectDualStatic: `network connect --ip X --ip6 Y` gives a running
// container a new interface with exactly those addresses (and its
// /etc/hosts the IPv4 one); disconnect takes the interface, the entry and
// both leases away.
func TestConnectDualStatic(t *testing.T) {
	e := newEnv(t)
	sub4, sub6 := e.dualNet("dsc")
	ip4, ip6 := nthAddr(sub4, 66), nthAddr(sub6, 0x66)
	e.ok("run", "-d", "--name", "cc", "--hostname", "cc-host", "busybox", "sleep", "300")
	defer e.run(nil, "rm", "-f", "cc")
	e.ok("network", "connect", "--ip", ip4.String(), "--ip6", ip6.String(), "dsc", "cc")
	out := e.ok("exec", "cc", "ip", "-o", "addr", "show", "eth1")
	for _, p := range []netip.Prefix{netip.PrefixFrom(ip4, sub4.Bits()), netip.PrefixFrom(ip6, sub6.Bits())} {
		if !strings.Contains(out, " "+p.String()+" ") {
			t.Fatalf("eth1 lacks %s:\n%s", p, out)
		}
	}
	if got := strings.TrimSpace(e.ok("inspect", "--format", `{{(index .NetworkSettings.Networks "dsc").IPAddress}} {{(index .NetworkSettings.Networks "dsc").GlobalIPv6Address}}`, "cc")); got != ip4.String()+" "+ip6.String() {
		t.Fatalf("inspect shows %q, want %s %s", got, ip4, ip6)
	}
	if hosts := e.ok("exec", "cc", "cat", "/etc/hosts"); !strings.Contains(hosts, ip4.String()+"\tcc-host\n") {
		t.Fatalf("connect: /etc/hosts lacks %s cc-host:\n%s", ip4, hosts)
	}
	e.ok("network", "disconnect", "dsc", "cc")
	if out, _, _ := e.run(nil, "exec", "cc", "ip", "-o", "link", "show", "eth1"); strings.Contains(out, "eth1") {
		t.Fatalf("eth1 left after disconnect: %s", out)
	}
	if hosts := e.ok("exec", "cc", "cat", "/etc/hosts"); strings.Contains(hosts, ip4.String()) {
		t.Fatalf("disconnect left %s in /etc/hosts:\n%s", ip4, hosts)
	}
	for _, a := range []netip.Addr{ip4, ip6} {
		if e.leased("dsc", a) {
			t.Fatalf("lease %s left after disconnect", a)
		}
	}
	// Connecting again with the same addresses works: nothing was kept.
	e.ok("network", "connect", "--ip", ip4.String(), "--ip6", ip6.String(), "dsc", "cc")
	e.ok("network", "disconnect", "dsc", "cc")
}
