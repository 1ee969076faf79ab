package network

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// SubnetClaimDir holds one claim per subnet that a berth instance picked
// for a network, shared by every instance on the host whatever its root
// and state: a network's bridge (and with it the route that pickSubnet
// checks) appears only at its first attach, so without claims two
// instances creating networks at the same time pick the same subnet and
// their containers' traffic lands on the wrong bridge. A claim is a
// symlink named after the subnet whose target is the claiming network's
// metadata file: symlink(2) makes claiming atomic, and a claim whose
// target is gone (a root deleted without `network rm`) is stale and taken
// over. Like the bridges it protects, it lives on /run and a reboot
// clears it.
var SubnetClaimDir = "/run/berth-subnets"

func claimName(p netip.Prefix) string {
	return strings.NewReplacer("/", "_", ":", "-").Replace(p.Masked().String())
}

// claimSubnet claims p for network name of this store, reporting false
// when another network holds it. Should claims not work at all (no /run,
// not root), it accepts: the host's routes still guard. Claims are made
// under a lock on the directory, so reclaiming a stale one is not a race.
func (s *Store) claimSubnet(p netip.Prefix, name string) bool {
	if err := os.MkdirAll(SubnetClaimDir, 0o755); err != nil {
		return true
	}
	unlock, err := flockFile(filepath.Join(SubnetClaimDir, "lock"))
	if err != nil {
		return true
	}
	defer unlock()
	path := filepath.Join(SubnetClaimDir, claimName(p))
	me := s.metaPath(name)
	if owner, err := os.Readlink(path); err == nil {
		if owner == me {
			return true
		}
		// The claimant writes its metadata just after claiming: a claim
		// is stale only when its network has been gone for a while.
		st, lerr := os.Lstat(path)
		if _, err := os.Stat(owner); err == nil || lerr != nil || time.Since(st.ModTime()) < time.Minute {
			return false
		}
		if err := os.Remove(path); err != nil {
			return false
		}
	}
	if err := os.Symlink(me, path); errors.Is(err, os.ErrExist) {
		return false
	}
	return true
}

// releaseSubnet drops network name's claim on p.
func (s *Store) releaseSubnet(p netip.Prefix, name string) {
	path := filepath.Join(SubnetClaimDir, claimName(p))
	if owner, err := os.Readlink(path); err == nil && owner == s.metaPath(name) {
		_ = os.Remove(path)
	}
}
