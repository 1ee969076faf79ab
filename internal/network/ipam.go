package network

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
	"golang.org/x/sys/unix"
)

// ipam hands out the addresses of one native network. A lease is a
// symlink <dir>/<address> whose target is "<container ID>/<ifname>":
// symlink(2) fails with EEXIST when the name exists, so creating one is
// an atomic test-and-set that no two processes can both win, and reading
// an owner back is one readlink. The directory lock (flock on <dir>/lock)
// only orders allocations so the round-robin hint it holds is
// consistent; correctness does not depend on it.
//
// The directory lives under the state directory, which a reboot clears
// together with every namespace that held an address.
type ipam struct {
	dir string
}

func leaseOwner(containerID, ifName string) string { return containerID + "/" + ifName }

// allocate leases an address of subnet (restricted to within when valid)
// for containerID's ifName: want when it is valid (a Conflict error when
// someone else holds it), else the next free one after the last address
// handed out, so a just-released address is not reused at once (peers may
// still hold its old MAC in their neighbour caches).
func (m ipam) allocate(subnet, within netip.Prefix, gateway, want netip.Addr, containerID, ifName string) (netip.Addr, error) {
	a, _, err := m.allocateNew(subnet, within, gateway, want, containerID, ifName)
	return a, err
}

// allocateNew is allocate that also says whether the lease is new, rather
// than one the owner held already (a restart of the same attachment):
// only a new one is this call's to take back.
func (m ipam) allocateNew(subnet, within netip.Prefix, gateway, want netip.Addr, containerID, ifName string) (netip.Addr, bool, error) {
	owner := leaseOwner(containerID, ifName)
	if want.IsValid() {
		if !subnet.Contains(want) || want == gateway || !usable(subnet, want) {
			return netip.Addr{}, false, fmt.Errorf("address %s is not usable in subnet %s: %w", want, subnet, errdefs.ErrInvalidArgument)
		}
		created, err := m.claim(want, owner)
		if err != nil {
			return netip.Addr{}, false, err
		}
		return want, created, nil
	}
	lock, err := m.lock()
	if err != nil {
		return netip.Addr{}, false, err
	}
	defer lock.Close()
	r := subnet.Masked()
	if within.IsValid() {
		r = within.Masked()
	}
	first := r.Addr()
	start := first
	// The round-robin hint lives in the lock file, padded to a fixed
	// width: read and written with one pread and one pwrite on the locked
	// descriptor, where a file of its own cost an open, a truncate and a
	// close per attach. Subnets are either IPv4 or IPv6, so one network
	// keeps a hint per family at its own offset.
	off := int64(0)
	if first.Is6() {
		off = hintWidth
	}
	var hb [hintWidth]byte
	if n, _ := lock.ReadAt(hb[:], off); n > 0 {
		if a, err := netip.ParseAddr(strings.TrimSpace(string(hb[:n]))); err == nil && r.Contains(a) {
			start = a.Next()
		}
	}
	// Walk the range once, from start around to just before it.
	a := start
	for i := 0; ; i++ {
		if !a.IsValid() || !r.Contains(a) {
			a = first
		}
		if i > 0 && a == start {
			break
		}
		if a != gateway && usable(subnet, a) {
			created, err := m.claim(a, owner)
			if err == nil {
				_, _ = lock.WriteAt([]byte(fmt.Sprintf("%-*s", hintWidth, a.String())), off)
				return a, created, nil
			}
			if !errdefs.IsConflict(err) {
				return netip.Addr{}, false, err
			}
		}
		a = a.Next()
		if i > 1<<24 {
			break // a /8 is the largest range worth walking
		}
	}
	return netip.Addr{}, false, fmt.Errorf("no free address left in %s: %w", r, errdefs.ErrUnavailable)
}

// hintWidth holds any address's text (IPv6: at most 39 characters) and
// its padding.
const hintWidth = 48

// lock opens and flocks <dir>/lock, creating the directory on first use.
func (m ipam) lock() (*os.File, error) {
	p := filepath.Join(m.dir, "lock")
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(m.dir, 0o711); err != nil {
			return nil, err
		}
		f, err = os.OpenFile(p, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	}
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, &os.PathError{Op: "flock", Path: p, Err: err}
	}
	return f, nil
}

// usable excludes a subnet's network address (and for IPv4 its broadcast
// address; for IPv6 the subnet-router anycast address is the network
// address too).
func usable(subnet netip.Prefix, a netip.Addr) bool {
	if a == subnet.Masked().Addr() {
		return false
	}
	if a.Is4() && subnet.Bits() < 31 && a == lastAddr(subnet) {
		return false
	}
	return true
}

// claim creates a's lease for owner (created), or accepts one owner
// already holds.
func (m ipam) claim(a netip.Addr, owner string) (created bool, _ error) {
	p := filepath.Join(m.dir, a.String())
	err := os.Symlink(owner, p)
	if errors.Is(err, os.ErrNotExist) {
		// The network's first lease (a static --ip skips the lock that
		// creates the directory otherwise).
		if err := os.MkdirAll(m.dir, 0o711); err != nil {
			return false, err
		}
		err = os.Symlink(owner, p)
	}
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, os.ErrExist) {
		return false, fmt.Errorf("lease %s: %w", a, err)
	}
	if cur, _ := os.Readlink(p); cur == owner {
		return false, nil
	}
	// dockerd's words (libnetwork's ErrIPAlreadyAllocated), and the address.
	return false, fmt.Errorf("Address already in use: %s: %w", a, errdefs.ErrConflict) //nolint:staticcheck // dockerd's wording
}

// drop removes a's lease if owner still holds it.
func (m ipam) drop(a netip.Addr, owner string) error {
	p := filepath.Join(m.dir, a.String())
	if cur, err := os.Readlink(p); err != nil || cur != owner {
		return nil
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("release lease %s: %w", a, err)
	}
	return nil
}

// release drops every lease containerID holds (of ifName, or all when
// ""). Scanning by owner rather than trusting a record means the leases
// of an attach that was killed before it recorded anything are found too.
func (m ipam) release(containerID, ifName string) error {
	ents, err := os.ReadDir(m.dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range ents {
		if e.Type()&os.ModeSymlink == 0 {
			continue
		}
		p := filepath.Join(m.dir, e.Name())
		owner, err := os.Readlink(p)
		if err != nil {
			continue
		}
		cid, ifn, _ := strings.Cut(owner, "/")
		if cid != containerID || (ifName != "" && ifn != ifName) {
			continue
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// leases lists the addresses held and their owners' container IDs.
func (m ipam) leases() (map[netip.Addr]string, error) {
	ents, err := os.ReadDir(m.dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[netip.Addr]string{}
	for _, e := range ents {
		a, err := netip.ParseAddr(e.Name())
		if err != nil || e.Type()&os.ModeSymlink == 0 {
			continue
		}
		if owner, err := os.Readlink(filepath.Join(m.dir, e.Name())); err == nil {
			cid, _, _ := strings.Cut(owner, "/")
			out[a] = cid
		}
	}
	return out, nil
}

// reserve leases n's addresses for containerID's ifName: an IPv4 one and,
// on a dual-stack network, an IPv6 one, each the static address asked for
// when valid (ValidateStatic's rules) or the next free one. Both are
// reserved or neither: when the second cannot be had, the first is
// released again, unless the owner held it before this call (a restart of
// the same attachment keeps what it had).
func (m ipam) reserve(n *Network, want4, want6 netip.Addr, containerID, ifName string) (ip4, ip6 netip.Addr, _ error) {
	if err := ValidateStatic(n, want4, want6); err != nil {
		return netip.Addr{}, netip.Addr{}, err
	}
	ip4, new4, err := m.allocateNew(n.Subnet, n.IPRange, n.Gateway, want4, containerID, ifName)
	if err != nil {
		return netip.Addr{}, netip.Addr{}, err
	}
	if !n.Subnet6.IsValid() {
		return ip4, netip.Addr{}, nil
	}
	ip6, _, err = m.allocateNew(n.Subnet6, netip.Prefix{}, n.Gateway6, want6, containerID, ifName)
	if err != nil {
		if new4 {
			if derr := m.drop(ip4, leaseOwner(containerID, ifName)); derr != nil {
				err = errors.Join(err, derr)
			}
		}
		return netip.Addr{}, netip.Addr{}, err
	}
	return ip4, ip6, nil
}

// ValidateStatic checks static addresses asked of network n (`--ip`,
// `--ip6`, connect's) against its subnets, with dockerd's words: each in
// its family's subnet, and an IPv6 one only on a network with IPv6. A
// static address outside --ip-range but inside the subnet is fine, as in
// Docker: the range is for the addresses IPAM picks.
func ValidateStatic(n *Network, v4, v6 netip.Addr) error {
	var msgs []string
	if v4.IsValid() {
		switch {
		case !v4.Unmap().Is4() || v4.IsUnspecified():
			msgs = append(msgs, "invalid IPv4 address: "+v4.String())
		case !n.Subnet.Contains(v4.Unmap()):
			msgs = append(msgs, "no configured subnet or ip-range contain the IP address "+v4.String())
		}
	}
	if v6.IsValid() {
		switch {
		case !v6.Is6() || v6.Is4In6() || v6.IsUnspecified():
			msgs = append(msgs, "invalid IPv6 address: "+v6.String())
		case !n.Subnet6.IsValid():
			// What dockerd says of an address no subnet of its family
			// could hold, here: the network has no IPv6.
			msgs = append(msgs, "user specified IP address is supported only when connecting to networks with user configured subnets (network "+n.Name+" has no IPv6 subnet)")
		case !n.Subnet6.Contains(v6):
			msgs = append(msgs, "no configured subnet or ip-range contain the IP address "+v6.String())
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	return fmt.Errorf("invalid config for network %s: invalid endpoint settings:\n%s: %w", n.Name, strings.Join(msgs, "\n"), errdefs.ErrInvalidArgument)
}
