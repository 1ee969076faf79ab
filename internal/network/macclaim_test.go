package network

import (
	"net"
	"net/netip"
	"testing"
)

// TestPickMAC: a generated MAC is the derived one unless a recorded MAC
// (a user's, or an earlier fallback) is the same, in which case it is a
// fresh one outside the derived range; user MACs are recorded and may
// repeat (as with dockerd); release takes an owner's records back.
func TestPickMAC(t *testing.T) {
	m := ipam{dir: t.TempDir()}
	ip := netip.MustParseAddr("10.250.9.5")
	derived := macFor(ip)
	mustPick := func(ip netip.Addr, user net.HardwareAddr, owner string) net.HardwareAddr {
		t.Helper()
		mac, err := m.pickMAC(ip, user, owner)
		if err != nil {
			t.Fatalf("pickMAC(%s, %q, %s): %v", ip, user, owner, err)
		}
		return mac
	}

	if got := mustPick(ip, nil, "c1/eth0"); got.String() != derived.String() {
		t.Fatalf("free derived MAC: got %s, want %s", got, derived)
	}
	// A user's MAC equal to what .5 derives: recorded, twice (two holders).
	for _, owner := range []string{"u1/eth0", "u2/eth0"} {
		if got := mustPick(netip.MustParseAddr("10.250.9.7"), derived, owner); got.String() != derived.String() {
			t.Fatalf("user MAC for %s: got %s", owner, got)
		}
	}
	// Now .5's derived MAC is taken: another attach with .5 (c1 left)
	// gets a fresh MAC, never one of the derived form.
	fresh := mustPick(ip, nil, "c2/eth0")
	if fresh.String() == derived.String() || (fresh[0] == 0x02 && fresh[1] == 0x42) {
		t.Fatalf("fallback MAC %s is of the derived form", fresh)
	}
	if fresh[0]&0x01 != 0 || fresh[0]&0x02 == 0 {
		t.Fatalf("fallback MAC %s is not locally administered unicast", fresh)
	}
	if held, err := m.macHeld(fresh, "c3/eth0"); err != nil || !held {
		t.Fatalf("fallback MAC %s not recorded: %v %v", fresh, held, err)
	}
	// An owner's own record does not count against it (a restart).
	if held, _ := m.macHeld(derived, "u1/eth0"); !held {
		t.Fatal("u2's record of the derived MAC is not seen by u1")
	}
	if err := m.release("u1", ""); err != nil {
		t.Fatal(err)
	}
	if held, _ := m.macHeld(derived, "x/eth0"); !held {
		t.Fatal("u2 still holds the MAC after u1's release")
	}
	if err := m.release("u2", "eth0"); err != nil {
		t.Fatal(err)
	}
	if got := mustPick(ip, nil, "c4/eth0"); got.String() != derived.String() {
		t.Fatalf("derived MAC after every holder left: got %s, want %s", got, derived)
	}
	if leases, err := m.leases(); err != nil || len(leases) != 0 {
		t.Fatalf("MAC records show as address leases: %v %v", leases, err)
	}
}
