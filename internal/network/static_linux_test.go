package network

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
)

// TestDualStaticAttach: on a dual-stack network an attachment asking for
// a static IPv4 and IPv6 address gets exactly those two on its interface;
// a second one asking for the taken IPv6 address fails and leaves no
// IPv4 lease behind (the address is free for the next attach), on both
// drivers: the native IPAM and host-local through the CNI executor, given
// the addresses in args.cni.ips or, by a conflist whose bridge plugin
// declares it, the "ips" capability.
func TestDualStaticAttach(t *testing.T) {
	for _, d := range append(drivers, "cni-ips-capability") {
		t.Run(d, func(t *testing.T) { testDualStaticAttach(t, d) })
	}
}

func testDualStaticAttach(t *testing.T, driver string) {
	s := testStore(t)
	n := createNetWith(t, s, "ds", strings.TrimSuffix(driver, "-ips-capability"), CreateOptions{IPv6: true})
	if driver == "cni-ips-capability" {
		b, err := os.ReadFile(s.confPath(n.Name))
		if err != nil {
			t.Fatal(err)
		}
		var conf map[string]any
		if err := json.Unmarshal(b, &conf); err != nil {
			t.Fatal(err)
		}
		conf["plugins"].([]any)[0].(map[string]any)["capabilities"] = map[string]bool{"ips": true}
		if b, err = json.Marshal(conf); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(s.confPath(n.Name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if !n.Subnet6.IsValid() {
		t.Fatalf("network has no IPv6 subnet: %+v", n)
	}
	ctx := context.Background()
	// .77/::77 and .78 of the subnets, away from where IPAM starts.
	nth := func(k byte) (a4, a6 string) {
		b4, b6 := n.Subnet.Masked().Addr().As4(), n.Subnet6.Masked().Addr().As16()
		b4[3] += k
		b6[15] += k
		return netip.AddrFrom4(b4).String(), netip.AddrFrom16(b6).String()
	}
	v4a, v6a := nth(77)
	v4b, _ := nth(78)
	id1, ns1 := newNS(t, s)
	r1, err := s.Attach(ctx, n, Attachment{ContainerID: id1, NetNS: ns1, IPv4: mustAddr(v4a), IPv6: mustAddr(v6a)})
	if err != nil {
		t.Fatal(err)
	}
	if r1.IPv4.Addr().String() != v4a || r1.IPv6.Addr().String() != v6a {
		t.Fatalf("got %s and %s, want %s and %s", r1.IPv4, r1.IPv6, v4a, v6a)
	}
	out, err := inNS(ns1, "ip", "-o", "addr", "show", "eth0").CombinedOutput()
	if err != nil {
		t.Fatalf("ip addr: %v: %s", err, out)
	}
	for _, p := range []string{r1.IPv4.String(), r1.IPv6.String()} {
		if !strings.Contains(string(out), " "+p+" ") {
			t.Fatalf("eth0 lacks %s:\n%s", p, out)
		}
	}

	// The same IPv6 address for another container: refused, and its
	// IPv4 address is not left leased.
	id2, ns2 := newNS(t, s)
	_, err = s.Attach(ctx, n, Attachment{ContainerID: id2, NetNS: ns2, IPv4: mustAddr(v4b), IPv6: mustAddr(v6a)})
	if err == nil {
		t.Fatal("a second attachment got the same IPv6 address")
	}
	if driver == "native" && (!errdefs.IsConflict(err) || !strings.Contains(err.Error(), "Address already in use: "+v6a)) {
		t.Fatalf("want Conflict naming %s, got %v", v6a, err)
	}
	if _, lerr := os.Lstat(filepath.Join(s.ipamDir(), n.Name, v4b)); !errors.Is(lerr, os.ErrNotExist) {
		t.Fatalf("the refused attachment left its IPv4 lease %s: %v (attach error: %v)", v4b, lerr, err)
	}
	if out, _ := inNS(ns2, "ip", "-o", "link").CombinedOutput(); strings.Contains(string(out), "eth0") {
		t.Fatalf("the refused attachment left eth0: %s", out)
	}
	r2, err := s.Attach(ctx, n, Attachment{ContainerID: id2, NetNS: ns2, IPv4: mustAddr(v4b)})
	if err != nil {
		t.Fatalf("the IPv4 address of the refused attachment: %v", err)
	}
	if r2.IPv4.Addr().String() != v4b || !r2.IPv6.IsValid() || r2.IPv6.Addr().String() == v6a {
		t.Fatalf("second attachment got %s and %s", r2.IPv4, r2.IPv6)
	}
	if out, err := inNS(ns2, "busybox", "ping", "-c1", "-W2", v6a).CombinedOutput(); err != nil {
		t.Fatalf("ping %s: %v: %s", v6a, err, out)
	}

	// Detach frees both of the first attachment's leases.
	if err := s.Detach(ctx, n.Name, id1, ""); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{v4a, v6a} {
		if _, err := os.Lstat(filepath.Join(s.ipamDir(), n.Name, a)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("lease %s left after detach: %v", a, err)
		}
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
