package network

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
)

func TestIPAM(t *testing.T) {
	subnet := netip.MustParsePrefix("10.1.2.0/24")
	gw := netip.MustParseAddr("10.1.2.1")
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, m ipam)
	}{
		{"never twice, concurrently", func(t *testing.T, m ipam) {
			var mu sync.Mutex
			seen := map[netip.Addr]string{}
			var wg sync.WaitGroup
			for i := range 100 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					// A fresh ipam value per caller: nothing is shared
					// but the directory, as between processes.
					a, err := ipam{dir: m.dir}.allocate(subnet, netip.Prefix{}, gw, netip.Addr{}, fmt.Sprint("c", i), "eth0")
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					defer mu.Unlock()
					if o, dup := seen[a]; dup {
						t.Errorf("%s handed to %s and c%d", a, o, i)
					}
					seen[a] = fmt.Sprint("c", i)
				}()
			}
			wg.Wait()
			for a := range seen {
				if a == gw || !usable(subnet, a) {
					t.Errorf("handed out %s", a)
				}
			}
		}},
		{"full subnet", func(t *testing.T, m ipam) {
			small := netip.MustParsePrefix("10.1.3.0/30") // .1 gateway, .2 the only host
			if _, err := m.allocate(small, netip.Prefix{}, netip.MustParseAddr("10.1.3.1"), netip.Addr{}, "a", "eth0"); err != nil {
				t.Fatal(err)
			}
			if _, err := m.allocate(small, netip.Prefix{}, netip.MustParseAddr("10.1.3.1"), netip.Addr{}, "b", "eth0"); !errors.Is(err, errdefs.ErrUnavailable) {
				t.Fatalf("want Unavailable, got %v", err)
			}
		}},
		{"static address and conflict", func(t *testing.T, m ipam) {
			want := netip.MustParseAddr("10.1.2.77")
			if a, err := m.allocate(subnet, netip.Prefix{}, gw, want, "a", "eth0"); err != nil || a != want {
				t.Fatalf("got %s, %v", a, err)
			}
			if _, err := m.allocate(subnet, netip.Prefix{}, gw, want, "a", "eth0"); err != nil {
				t.Fatalf("the owner asking again: %v", err)
			}
			if _, err := m.allocate(subnet, netip.Prefix{}, gw, want, "b", "eth0"); !errdefs.IsConflict(err) {
				t.Fatalf("want Conflict, got %v", err)
			}
			if _, err := m.allocate(subnet, netip.Prefix{}, gw, gw, "b", "eth0"); !errdefs.IsInvalidArgument(err) {
				t.Fatalf("gateway: want InvalidArgument, got %v", err)
			}
		}},
		{"release by container, round robin", func(t *testing.T, m ipam) {
			a1, _ := m.allocate(subnet, netip.Prefix{}, gw, netip.Addr{}, "a", "eth0")
			b1, _ := m.allocate(subnet, netip.Prefix{}, gw, netip.Addr{}, "b", "eth0")
			if err := m.release("a", ""); err != nil {
				t.Fatal(err)
			}
			l, _ := m.leases()
			if _, ok := l[a1]; ok || l[b1] != "b" || len(l) != 1 {
				t.Fatalf("leases after release: %v", l)
			}
			if c1, _ := m.allocate(subnet, netip.Prefix{}, gw, netip.Addr{}, "c", "eth0"); c1 == a1 {
				t.Fatalf("released %s reused at once", a1)
			}
		}},
		{"ip range and IPv6", func(t *testing.T, m ipam) {
			r := netip.MustParsePrefix("10.1.2.128/28")
			a, err := m.allocate(subnet, r, gw, netip.Addr{}, "a", "eth0")
			if err != nil || !r.Contains(a) {
				t.Fatalf("got %s, %v", a, err)
			}
			s6 := netip.MustParsePrefix("fd00:1::/64")
			a6, err := m.allocate(s6, netip.Prefix{}, netip.MustParseAddr("fd00:1::1"), netip.Addr{}, "a", "eth0")
			if err != nil || a6 != netip.MustParseAddr("fd00:1::2") {
				t.Fatalf("got %s, %v", a6, err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, ipam{dir: t.TempDir()}) })
	}
}

// TestReserveBothOrNeither: a dual-stack attachment's static IPv4 and
// IPv6 addresses are leased together or not at all, and what cannot be
// had is refused with dockerd's words.
func TestReserveBothOrNeither(t *testing.T) {
	dual := &Network{Name: "ds",
		Subnet: netip.MustParsePrefix("10.1.2.0/24"), Gateway: netip.MustParseAddr("10.1.2.1"),
		Subnet6: netip.MustParsePrefix("fd00:1::/64"), Gateway6: netip.MustParseAddr("fd00:1::1")}
	v4only := &Network{Name: "v4", Subnet: dual.Subnet, Gateway: dual.Gateway}
	a4, b4 := netip.MustParseAddr("10.1.2.77"), netip.MustParseAddr("10.1.2.78")
	a6 := netip.MustParseAddr("fd00:1::77")
	for _, tc := range []struct {
		name string
		n    *Network
		// before runs first (other containers' leases); then "c" asks
		// for want4 and want6.
		before       func(t *testing.T, m ipam)
		want4, want6 netip.Addr
		err          func(error) bool
		msg          string
		leases       map[netip.Addr]string // after the call
	}{
		{name: "both static", n: dual, want4: a4, want6: a6,
			leases: map[netip.Addr]string{a4: "c", a6: "c"}},
		{name: "both chosen", n: dual,
			leases: map[netip.Addr]string{netip.MustParseAddr("10.1.2.2"): "c", netip.MustParseAddr("fd00:1::2"): "c"}},
		{name: "IPv6 taken: the IPv4 lease is released", n: dual, want4: b4, want6: a6,
			before: func(t *testing.T, m ipam) { mustReserve(t, m, dual, a4, a6, "other") },
			err:    errdefs.IsConflict, msg: "Address already in use: fd00:1::77",
			leases: map[netip.Addr]string{a4: "other", a6: "other"}},
		{name: "IPv6 taken: an IPv4 lease held before stays", n: dual, want4: b4, want6: a6,
			before: func(t *testing.T, m ipam) {
				mustReserve(t, m, dual, a4, a6, "other")
				if _, err := m.allocate(dual.Subnet, netip.Prefix{}, dual.Gateway, b4, "c", "eth0"); err != nil {
					t.Fatal(err)
				}
			},
			err:    errdefs.IsConflict,
			leases: map[netip.Addr]string{a4: "other", a6: "other", b4: "c"}},
		{name: "IPv4 taken: nothing leased", n: dual, want4: a4, want6: netip.MustParseAddr("fd00:1::99"),
			before: func(t *testing.T, m ipam) { mustReserve(t, m, dual, a4, a6, "other") },
			err:    errdefs.IsConflict, msg: "Address already in use: 10.1.2.77",
			leases: map[netip.Addr]string{a4: "other", a6: "other"}},
		{name: "IPv4 outside the subnet", n: dual, want4: netip.MustParseAddr("10.9.9.9"), want6: a6,
			err: errdefs.IsInvalidArgument, msg: "invalid config for network ds: invalid endpoint settings:\nno configured subnet or ip-range contain the IP address 10.9.9.9"},
		{name: "IPv6 outside the subnet", n: dual, want4: a4, want6: netip.MustParseAddr("fd00:2::5"),
			err: errdefs.IsInvalidArgument, msg: "no configured subnet or ip-range contain the IP address fd00:2::5"},
		{name: "IPv6 on a network without IPv6", n: v4only, want4: a4, want6: a6,
			err: errdefs.IsInvalidArgument, msg: "user specified IP address is supported only when connecting to networks with user configured subnets"},
		{name: "families swapped", n: dual, want4: a6, want6: a4,
			err: errdefs.IsInvalidArgument, msg: "invalid IPv4 address: fd00:1::77\ninvalid IPv6 address: 10.1.2.77"},
		{name: "IPv4 only network, IPv4 static", n: v4only, want4: a4,
			leases: map[netip.Addr]string{a4: "c"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := ipam{dir: t.TempDir()}
			if tc.before != nil {
				tc.before(t, m)
			}
			ip4, ip6, err := m.reserve(tc.n, tc.want4, tc.want6, "c", "eth0")
			if tc.err != nil {
				if err == nil || !tc.err(err) || !strings.Contains(err.Error(), tc.msg) {
					t.Fatalf("err = %v, want one containing %q", err, tc.msg)
				}
				if ip4.IsValid() || ip6.IsValid() {
					t.Errorf("failed reserve returned %s, %s", ip4, ip6)
				}
			} else if err != nil {
				t.Fatal(err)
			} else if (tc.want4.IsValid() && ip4 != tc.want4) || (tc.want6.IsValid() && ip6 != tc.want6) || ip6.IsValid() != tc.n.Subnet6.IsValid() {
				t.Fatalf("got %s, %s; want %s, %s", ip4, ip6, tc.want4, tc.want6)
			}
			got, err := m.leases()
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.leases) {
				t.Fatalf("leases %v, want %v", got, tc.leases)
			}
			for a, owner := range tc.leases {
				if got[a] != owner {
					t.Fatalf("leases %v, want %v", got, tc.leases)
				}
			}
		})
	}
}

func mustReserve(t *testing.T, m ipam, n *Network, v4, v6 netip.Addr, owner string) {
	t.Helper()
	if _, _, err := m.reserve(n, v4, v6, owner, "eth0"); err != nil {
		t.Fatal(err)
	}
}
