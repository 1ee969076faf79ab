package network

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
)

// MAC addresses on a native network. An attachment's MAC is derived from
// its IPv4 address (macFor, Docker's 02:42:a.b.c.d), so generated MACs
// are as unique on the bridge as the addresses are. The exceptions are
// MACs nobody derived: a user's --mac-address, and the MAC chosen when
// the derived one is taken by such a MAC. Those are recorded in the
// network's lease directory, beside the address leases and like them a
// symlink to the owner ("<container ID>/<ifname>"), named
// "mac-<hex>-<container ID>.<ifname>": one per holder, since dockerd lets
// two containers hold the same user-supplied MAC and so does berth (a
// user's choice, as in moby#22174), and release() takes them back with
// the owner's leases, also after an attach that was killed.

const macClaimPrefix = "mac-"

func macClaimName(mac net.HardwareAddr, owner string) string {
	return macClaimPrefix + hex.EncodeToString(mac) + "-" + strings.ReplaceAll(owner, "/", ".")
}

// macHeld reports whether an owner other than owner holds a claim on mac.
func (m ipam) macHeld(mac net.HardwareAddr, owner string) (bool, error) {
	ents, err := os.ReadDir(m.dir)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	prefix, own := macClaimPrefix+hex.EncodeToString(mac)+"-", macClaimName(mac, owner)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) && e.Name() != own {
			return true, nil
		}
	}
	return false, nil
}

// claimMAC records that owner holds mac.
func (m ipam) claimMAC(mac net.HardwareAddr, owner string) error {
	p := filepath.Join(m.dir, macClaimName(mac, owner))
	err := os.Symlink(owner, p)
	if errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(m.dir, 0o711); err != nil {
			return err
		}
		err = os.Symlink(owner, p)
	}
	if err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("record MAC %s: %w", mac, err)
	}
	return nil
}

// pickMAC returns the MAC of owner's attachment with IPv4 address ip4:
// the user's (recorded, never refused for being held already), else the
// derived one unless a recorded MAC is the same, else a random locally
// administered unicast MAC outside 02:42 — where no derived MAC can ever
// be — that nobody holds, recorded under the network's lock so two
// attaches cannot pick the same.
func (m ipam) pickMAC(ip4 netip.Addr, user net.HardwareAddr, owner string) (net.HardwareAddr, error) {
	if len(user) > 0 {
		return user, m.claimMAC(user, owner)
	}
	mac := macFor(ip4)
	held, err := m.macHeld(mac, owner)
	if err != nil || !held {
		return mac, err
	}
	lock, err := m.lock()
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	for range 64 {
		mac = make(net.HardwareAddr, 6)
		if _, err := rand.Read(mac); err != nil {
			return nil, err
		}
		mac[0] = mac[0]&0xfc | 0x02 // unicast, locally administered
		if mac[0] == 0x02 && mac[1] == 0x42 {
			continue
		}
		if held, err := m.macHeld(mac, owner); err != nil || held {
			if err != nil {
				return nil, err
			}
			continue
		}
		return mac, m.claimMAC(mac, owner)
	}
	return nil, fmt.Errorf("no free MAC address found for %s", owner)
}

// macFor derives a locally administered unicast MAC from an IPv4
// address, as Docker does (02:42:a.b.c.d): known without asking the
// kernel and unique on the bridge as long as the address is.
func macFor(a netip.Addr) net.HardwareAddr {
	b := a.As4()
	return net.HardwareAddr{0x02, 0x42, b[0], b[1], b[2], b[3]}
}
