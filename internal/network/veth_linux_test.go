package network

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestNativePlumbing checks what the batched netlink requests of an
// attach leave in the kernel: on a dual-stack network eth0 and eth1 (a second network) are up with their addresses and
// MACs, only eth0 has the default routes, the host ends have one queue
// each, no address and are enslaved to their bridges. In a namespace with other
// devices in it, eth0 is configured and they are left alone.
func TestNativePlumbing(t *testing.T) {
	s := testStore(t)
	ctx := context.Background()
	n1, err := s.Create("p1", CreateOptions{IPv6: true})
	if err != nil {
		t.Fatal(err)
	}
	n2, err := s.Create("p2", CreateOptions{Internal: true})
	if err != nil {
		t.Fatal(err)
	}
	id, ns := newNS(t, s)
	r1, err := s.Attach(ctx, n1, Attachment{ContainerID: id, NetNS: ns})
	if err != nil {
		t.Fatal(err)
	}
	r2, err := s.Attach(ctx, n2, Attachment{ContainerID: id, NetNS: ns, IfName: "eth1"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want []string
		not  []string
	}{
		{"eth0", []string{"ip", "-o", "addr", "show", "eth0"}, []string{r1.IPv4.String(), r1.IPv6.String()}, nil},
		{"eth0 link", []string{"ip", "-o", "link", "show", "eth0"}, []string{"UP", r1.MAC}, nil},
		// eth1's network is IPv4-only: no IPv6 address, not even a
		// link-local one; eth0's is dual-stack and keeps its link-local.
		{"eth1", []string{"ip", "-o", "addr", "show", "eth1"}, []string{r2.IPv4.String()}, []string{"inet6"}},
		{"eth0 link-local", []string{"ip", "-o", "-6", "addr", "show", "eth0"}, []string{"fe80::"}, nil},
		{"eth1 link", []string{"ip", "-o", "link", "show", "eth1"}, []string{"UP", r2.MAC}, nil},
		{"routes", []string{"ip", "route"}, []string{"default via " + n1.Gateway.String() + " dev eth0"}, []string{"dev eth1 proto boot"}},
		{"routes6", []string{"ip", "-6", "route"}, []string{"default via " + n1.Gateway6.String() + " dev eth0"}, nil},
	}
	for _, tt := range tests {
		out, err := inNS(ns, tt.args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v: %s", tt.name, err, out)
		}
		for _, w := range tt.want {
			if !strings.Contains(string(out), w) {
				t.Errorf("%s: want %q in:\n%s", tt.name, w, out)
			}
		}
		for _, w := range tt.not {
			if strings.Contains(string(out), w) {
				t.Errorf("%s: want no %q in:\n%s", tt.name, w, out)
			}
		}
	}
	for _, c := range []struct{ ifName, bridge string }{{"eth0", n1.Bridge}, {"eth1", n2.Bridge}} {
		host := vethName(id, c.ifName)
		out, err := exec.Command("ip", "-d", "link", "show", host).CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		for _, w := range []string{"master " + c.bridge, "numtxqueues 1 ", "numrxqueues 1 ", "state UP"} {
			if !strings.Contains(string(out), w) {
				t.Errorf("host end %s: want %q in:\n%s", host, w, out)
			}
		}
		// A bridge port needs no address: no IPv6 link-local either.
		if out, err := exec.Command("ip", "-o", "addr", "show", "dev", host).CombinedOutput(); err != nil || strings.Contains(string(out), "inet") {
			t.Errorf("host end %s has addresses: %v: %s", host, err, out)
		}
	}
	if out, err := inNS(ns, "busybox", "ping", "-c1", "-W2", n1.Gateway.String()).CombinedOutput(); err != nil {
		t.Fatalf("ping the gateway: %v: %s", err, out)
	}

	// Other devices first: a veth pair.
	id2, ns2 := newNS(t, s)
	if out, err := inNS(ns2, "ip", "link", "add", "x0", "type", "veth", "peer", "name", "x1").CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	r3, err := s.Attach(ctx, n1, Attachment{ContainerID: id2, NetNS: ns2})
	if err != nil {
		t.Fatal(err)
	}
	out, err := inNS(ns2, "ip", "-o", "addr", "show", "eth0").CombinedOutput()
	if err != nil || !strings.Contains(string(out), r3.IPv4.String()) {
		t.Fatalf("eth0 beside other devices: %v: %s", err, out)
	}
	if out, err := inNS(ns2, "ip", "-o", "addr", "show", "x1").CombinedOutput(); err != nil || strings.Contains(string(out), "inet") {
		t.Fatalf("x1 got an address: %v: %s", err, out)
	}
	if out, err := inNS(ns2, "ip", "route").CombinedOutput(); err != nil || !strings.Contains(string(out), "default via "+n1.Gateway.String()) {
		t.Fatalf("route beside other devices: %v: %s", err, out)
	}
}

// TestForwardFastPath: a network's own bridge-to-bridge accept comes
// before the isolation chain in BERTH-FORWARD (IPv4 and IPv6), and
// removing the network removes it.
func TestForwardFastPath(t *testing.T) {
	s := testStore(t)
	ctx := context.Background()
	n, err := s.Create("fp", CreateOptions{IPv6: true})
	if err != nil {
		t.Fatal(err)
	}
	id, ns := newNS(t, s)
	if _, err := s.Attach(ctx, n, Attachment{ContainerID: id, NetNS: ns}); err != nil {
		t.Fatal(err)
	}
	fast := "-A " + fwdChain + " -i " + n.Bridge + " -o " + n.Bridge + " -j ACCEPT"
	for _, bin := range []string{"iptables", "ip6tables"} {
		out, err := exec.Command(bin, "-w", "-S", fwdChain).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v: %s", bin, err, out)
		}
		rules := strings.Split(string(out), "\n")
		fi, ii := -1, -1
		for i, r := range rules {
			switch r {
			case fast:
				fi = i
			case "-A " + fwdChain + " -j " + isoChain1:
				ii = i
			}
		}
		if fi < 0 || ii < 0 || fi > ii {
			t.Fatalf("%s: want %q before the isolation jump:\n%s", bin, fast, out)
		}
	}
	if err := s.DetachAll(ctx, id); err != nil {
		t.Fatal(err)
	}
	_ = RemoveNetNS(ns)
	_ = os.Remove(ns)
	if err := s.Remove(n.Name); err != nil {
		t.Fatal(err)
	}
	for _, bin := range []string{"iptables", "ip6tables"} {
		out, _ := exec.Command(bin, "-w", "-S", fwdChain).CombinedOutput()
		if strings.Contains(string(out), n.Bridge) {
			t.Fatalf("%s: rules of removed %s left:\n%s", bin, n.Bridge, out)
		}
	}
}
