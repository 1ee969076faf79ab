package network

import (
	"errors"
	"fmt"
	"net/netip"
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
