package network

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
)

// TestNativeMACNoCollision: on a native network, in real namespaces, an
// attachment whose derived MAC a running one already has (a user's
// --mac-address) gets another MAC on its eth0; a second user of the same
// --mac-address is let through, as dockerd does; detaching leaves no MAC
// record behind.
func TestNativeMACNoCollision(t *testing.T) {
	s := testStore(t)
	n := createNetWith(t, s, "macs", "native", CreateOptions{})
	ctx := context.Background()
	nth := func(k byte) netip.Addr {
		b := n.Subnet.Masked().Addr().As4()
		b[3] += k
		return netip.AddrFrom4(b)
	}
	taken := macFor(nth(30)).String()
	eth0MAC := func(ns string) string {
		t.Helper()
		// ip(8) asks the namespace over netlink; /sys/class/net would
		// show the host's (sysfs follows the mount namespace's netns).
		b, err := inNS(ns, "ip", "-o", "link", "show", "eth0").CombinedOutput()
		if err != nil {
			t.Fatalf("eth0 address: %v: %s", err, b)
		}
		f := strings.Fields(string(b))
		for i := range f[:len(f)-1] {
			if f[i] == "link/ether" {
				return f[i+1]
			}
		}
		t.Fatalf("no link/ether in %s", b)
		return ""
	}
	attach := func(a Attachment) (*Result, string) {
		t.Helper()
		id, ns := newNS(t, s)
		a.ContainerID, a.NetNS = id, ns
		r, err := s.Attach(ctx, n, a)
		if err != nil {
			t.Fatalf("attach %+v: %v", a, err)
		}
		t.Cleanup(func() { _ = s.Detach(context.Background(), n.Name, id, "eth0") })
		return r, ns
	}

	rA, nsA := attach(Attachment{IPv4: nth(20), MAC: taken})
	if rA.MAC != taken || eth0MAC(nsA) != taken {
		t.Fatalf("user MAC: result %s, eth0 %s, want %s", rA.MAC, eth0MAC(nsA), taken)
	}
	rB, nsB := attach(Attachment{IPv4: nth(30)})
	if rB.MAC == taken || eth0MAC(nsB) != rB.MAC {
		t.Fatalf("attachment at %s: result %s, eth0 %s; want a MAC other than %s", nth(30), rB.MAC, eth0MAC(nsB), taken)
	}
	rC, nsC := attach(Attachment{MAC: taken})
	if rC.MAC != taken || eth0MAC(nsC) != taken {
		t.Fatalf("second user of %s: result %s, eth0 %s", taken, rC.MAC, eth0MAC(nsC))
	}
	// B reaches A over the bridge (the fixture's static busybox: the
	// host may have no ping).
	rootfs, err := testutil.BusyboxRootfs()
	if err != nil {
		t.Fatal(err)
	}
	if out, err := inNS(nsB, filepath.Join(rootfs, "bin", "busybox"), "ping", "-c", "1", "-W", "2", rA.IPv4.Addr().String()).CombinedOutput(); err != nil {
		t.Errorf("ping A from B: %v: %s", err, out)
	}

	ids, err := s.endpoints("")
	if err != nil {
		t.Fatal(err)
	}
	for _, ep := range ids {
		if err := s.Detach(ctx, n.Name, ep.ContainerID, ep.IfName); err != nil {
			t.Fatal(err)
		}
	}
	ents, err := os.ReadDir(s.ipamOf(n.Name).dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), macClaimPrefix) {
			t.Errorf("MAC record %s left after detach", e.Name())
		}
	}
}
