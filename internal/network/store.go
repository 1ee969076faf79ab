package network

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/atomicfile"
	"github.com/berth-dev/berth/internal/errdefs"
	"golang.org/x/sys/unix"
)

// Options configure a Store.
type Options struct {
	Root, State string
	// DefaultRoot is the root for which the default network keeps the
	// well-known names (berth0, 10.88.0.0/16).
	DefaultRoot string
	// CNIPath lists plugin directories (default $BERTH_CNI_PATH, else
	// /usr/lib/cni:/opt/cni/bin).
	CNIPath []string
	// DefaultBridge and DefaultSubnet override the default network's
	// (default $BERTH_BRIDGE, $BERTH_SUBNET).
	DefaultBridge, DefaultSubnet string
}

// Store holds the networks of one berth root.
type Store struct {
	opts Options
}

// Open opens the network store; it creates nothing until it is used.
func Open(opts Options) (*Store, error) {
	if opts.Root == "" || opts.State == "" {
		return nil, fmt.Errorf("network store: root and state are required: %w", errdefs.ErrInvalidArgument)
	}
	if opts.CNIPath == nil {
		if v := os.Getenv("BERTH_CNI_PATH"); v != "" {
			opts.CNIPath = filepath.SplitList(v)
		} else {
			opts.CNIPath = []string{"/usr/lib/cni", "/opt/cni/bin"}
		}
	}
	if opts.DefaultBridge == "" {
		opts.DefaultBridge = os.Getenv("BERTH_BRIDGE")
	}
	if opts.DefaultSubnet == "" {
		opts.DefaultSubnet = os.Getenv("BERTH_SUBNET")
	}
	// Once per process, and only when a host-wide marker names a bridge
	// or a namespace that is gone: a readdir and a stat per marker.
	sweepIfSuspected()
	return &Store{opts: opts}, nil
}

func (s *Store) dir() string                 { return filepath.Join(s.opts.Root, "networks") }
func (s *Store) metaPath(name string) string { return filepath.Join(s.dir(), name+".json") }
func (s *Store) confPath(name string) string { return filepath.Join(s.dir(), name+".conflist") }
func (s *Store) ipamDir() string             { return filepath.Join(s.opts.State, "network", "ipam") }
func (s *Store) cacheDir() string            { return filepath.Join(s.opts.State, "network", "cni") }

// DNSDir is where the records of a network's DNS server live.
func (s *Store) DNSDir(name string) string {
	return filepath.Join(s.opts.State, "network", "dns", name)
}

// lock takes the store's cross-process lock: network creation, removal and
// the records of attachments change under it.
func (s *Store) lock() (func(), error) {
	return flockFile(filepath.Join(s.dir(), "lock"))
}

// flockFile takes an exclusive flock on path (created as needed).
func flockFile(path string) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o711); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, &os.PathError{Op: "flock", Path: path, Err: err}
	}
	return func() { f.Close() }, nil
}

// Get returns the network named name, or whose ID starts with name. The
// default network is created on first use.
func (s *Store) Get(name string) (*Network, error) {
	if name == DefaultNetwork {
		return s.ensureDefault()
	}
	n, err := s.read(name)
	if err == nil || !errdefs.IsNotFound(err) {
		return n, err
	}
	all, lerr := s.List()
	if lerr != nil {
		return nil, lerr
	}
	var found *Network
	for _, c := range all {
		if len(name) >= 1 && strings.HasPrefix(c.ID, name) {
			if found != nil {
				return nil, fmt.Errorf("network %s is ambiguous: %w", name, errdefs.ErrInvalidArgument)
			}
			found = c
		}
	}
	if found == nil {
		return nil, err
	}
	return found, nil
}

func (s *Store) read(name string) (*Network, error) {
	if ValidName(name) != nil {
		return nil, fmt.Errorf("network %s not found: %w", name, errdefs.ErrNotFound)
	}
	b, err := os.ReadFile(s.metaPath(name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("network %s not found: %w", name, errdefs.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	var n Network
	if err := json.Unmarshal(b, &n); err != nil {
		return nil, fmt.Errorf("network %s: %w", name, err)
	}
	return &n, nil
}

// List returns every network, the default one included, by name.
func (s *Store) List() ([]*Network, error) {
	if _, err := s.ensureDefault(); err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(s.dir())
	if err != nil {
		return nil, err
	}
	var out []*Network
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok {
			continue
		}
		n, err := s.read(name)
		if err != nil {
			continue // removed meanwhile, or not ours
		}
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// ensureDefault creates the default network when it does not exist yet.
func (s *Store) ensureDefault() (*Network, error) {
	if n, err := s.read(DefaultNetwork); err == nil {
		return n, nil
	}
	o := CreateOptions{Bridge: s.opts.DefaultBridge, Subnet: s.opts.DefaultSubnet}
	if s.opts.Root == s.opts.DefaultRoot {
		if o.Bridge == "" {
			o.Bridge = DefaultBridge
		}
		if o.Subnet == "" {
			o.Subnet = DefaultSubnet
		}
	}
	n, err := s.create(DefaultNetwork, o, false)
	if errdefs.IsAlreadyExists(err) {
		return s.read(DefaultNetwork)
	}
	return n, err
}

// Create makes a user-defined network.
func (s *Store) Create(name string, o CreateOptions) (*Network, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	switch name {
	case DefaultNetwork, "host", "none", "default":
		return nil, fmt.Errorf("%s is a pre-defined network and cannot be created: %w", name, errdefs.ErrPermission)
	}
	return s.create(name, o, true)
}

func (s *Store) create(name string, o CreateOptions, dns bool) (_ *Network, retErr error) {
	if o.Driver != "" && o.Driver != "bridge" {
		return nil, fmt.Errorf("network driver %q is not supported (write a CNI conflist for other plugins): %w", o.Driver, errdefs.ErrInvalidArgument)
	}
	unlock, err := s.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	if _, err := os.Stat(s.metaPath(name)); err == nil {
		return nil, fmt.Errorf("network with name %s already exists: %w", name, errdefs.ErrAlreadyExists)
	}
	existing, err := s.listLocked()
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	n := &Network{
		Name: name, ID: networkID(s.opts.Root, name, now), Driver: "bridge", Created: now,
		Internal: o.Internal, DNS: dns, Options: o.Options, Labels: o.Labels, Native: true,
	}
	n.Bridge = o.Bridge
	for _, k := range []string{"com.docker.network.bridge.name", "bridge.name"} {
		if v := o.Options[k]; v != "" && n.Bridge == "" {
			n.Bridge = v
		}
	}
	if n.Bridge == "" {
		n.Bridge = bridgeName(s.opts.Root, name)
	}
	if len(n.Bridge) > 15 {
		return nil, fmt.Errorf("bridge name %q is longer than 15 characters: %w", n.Bridge, errdefs.ErrInvalidArgument)
	}
	var used []netip.Prefix
	for _, e := range existing {
		if e.Bridge == n.Bridge {
			return nil, fmt.Errorf("bridge %s is already used by network %s: %w", n.Bridge, e.Name, errdefs.ErrConflict)
		}
		used = append(used, e.Subnet)
		if e.Subnet6.IsValid() {
			used = append(used, e.Subnet6)
		}
	}
	claim := func(p netip.Prefix) bool { return s.claimSubnet(p, name) }
	if n.Subnet, n.Gateway, err = pickSubnet(o.Subnet, o.Gateway, used, false, claim); err != nil {
		return nil, err
	}
	if o.IPRange != "" {
		r, err := netip.ParsePrefix(o.IPRange)
		if err != nil || !n.Subnet.Contains(r.Addr()) || r.Bits() < n.Subnet.Bits() {
			return nil, fmt.Errorf("invalid --ip-range %q: must be a sub-range of %s: %w", o.IPRange, n.Subnet, errdefs.ErrInvalidArgument)
		}
		n.IPRange = r.Masked()
	}
	if o.IPv6 || o.Subnet6 != "" {
		if n.Subnet6, n.Gateway6, err = pickSubnet(o.Subnet6, o.Gateway6, used, true, claim); err != nil {
			return nil, err
		}
	}
	conf, err := n.conflist(s.ipamDir())
	if err != nil {
		return nil, err
	}
	meta, err := json.MarshalIndent(n, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(s.confPath(name), conf, 0o644); err != nil {
		return nil, err
	}
	defer func() {
		if retErr != nil {
			_ = os.Remove(s.confPath(name))
		}
	}()
	if err := writeFileAtomic(s.metaPath(name), meta, 0o644); err != nil {
		return nil, err
	}
	return n, nil
}

func (s *Store) listLocked() ([]*Network, error) {
	ents, err := os.ReadDir(s.dir())
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	var out []*Network
	for _, e := range ents {
		if name, ok := strings.CutSuffix(e.Name(), ".json"); ok {
			if n, err := s.read(name); err == nil {
				out = append(out, n)
			}
		}
	}
	return out, nil
}

// Remove deletes a network's configuration, its isolation rules and its
// bridge. The caller makes sure no container is attached.
func (s *Store) Remove(name string) error {
	if name == DefaultNetwork || name == "host" || name == "none" {
		return fmt.Errorf("%s is a pre-defined network and cannot be removed: %w", name, errdefs.ErrPermission)
	}
	n, err := s.read(name)
	if err != nil {
		return err
	}
	unlock, err := s.lock()
	if err != nil {
		return err
	}
	defer unlock()
	_ = s.stopDNSLocked(name)
	if err := s.removeHostLocked(n); err != nil {
		return err
	}
	_ = os.RemoveAll(s.DNSDir(name))
	_ = os.RemoveAll(filepath.Join(s.ipamDir(), name))
	if err := os.Remove(s.metaPath(name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := os.Remove(s.confPath(name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// nativeMark says that n's bridge, sysctls and rules are set up (per
// state directory, which a reboot clears with them). Its name carries the
// version of the rule layout, so a network set up by an older berth gets
// the rules it lacks (all are checked before they are added) once.
func (s *Store) nativeMark(n *Network) string {
	return filepath.Join(s.opts.State, "network", "native", n.Name+"-"+n.ID[:12]+".v2")
}

// removeHostLocked removes what a network put on the host: its markers,
// isolation and (native) forward and masquerade rules, and its bridge.
func (s *Store) removeHostLocked(n *Network) error {
	_ = os.Remove(filepath.Join(s.opts.State, "network", "isolation", n.Name+"-"+n.ID[:12]))
	_ = os.Remove(filepath.Join(s.opts.State, "network", "native", n.Name+"-"+n.ID[:12]))
	_ = os.Remove(s.nativeMark(n))
	if err := removeIsolation(n); err != nil {
		return err
	}
	if n.Native {
		removeNetworkRules(n)
	}
	s.releaseSubnet(n.Subnet, n.Name)
	if n.Subnet6.IsValid() {
		s.releaseSubnet(n.Subnet6, n.Name)
	}
	deleteLink(n.Bridge)
	return nil
}

// pickSubnet parses the requested subnet and gateway, or picks the first
// free one: /24s from 10.89.0.0 (IPv4) or a /64 in fd00:b7::/48 (IPv6) that
// overlaps neither another network of the store nor a route of the host,
// and that claim accepts (another instance may have picked it without
// having made its bridge yet: no route shows it).
func pickSubnet(subnet, gateway string, used []netip.Prefix, v6 bool, claim func(netip.Prefix) bool) (netip.Prefix, netip.Addr, error) {
	routes := hostRoutes()
	var p netip.Prefix
	if subnet != "" {
		var err error
		if p, err = netip.ParsePrefix(subnet); err != nil {
			return p, netip.Addr{}, fmt.Errorf("invalid subnet %q: %w", subnet, errdefs.ErrInvalidArgument)
		}
		p = p.Masked()
		if p.Addr().Is6() != v6 {
			return p, netip.Addr{}, fmt.Errorf("subnet %s: wrong address family: %w", p, errdefs.ErrInvalidArgument)
		}
		for _, u := range used {
			if overlaps(u, p) {
				return p, netip.Addr{}, fmt.Errorf("subnet %s overlaps the subnet %s of another network: %w", p, u, errdefs.ErrConflict)
			}
		}
		if claim != nil {
			// Asked for by name: taken even if another instance holds
			// it (as Docker, which checks only its own networks), and
			// claimed so automatic picks elsewhere avoid it.
			_ = claim(p)
		}
	} else {
	search:
		for i := 0; i < 1<<14; i++ {
			var cand netip.Prefix
			if v6 {
				b := [16]byte{0xfd, 0x00, 0x00, 0xb7, byte(i >> 8), byte(i)}
				cand = netip.PrefixFrom(netip.AddrFrom16(b), 64)
			} else {
				var b [4]byte
				binary.BigEndian.PutUint32(b[:], 10<<24|89<<16+uint32(i)<<8)
				cand = netip.PrefixFrom(netip.AddrFrom4(b), 24)
			}
			for _, u := range append(used, routes...) {
				if overlaps(u, cand) {
					continue search
				}
			}
			if claim != nil && !claim(cand) {
				continue
			}
			p = cand
			break
		}
		if !p.IsValid() {
			return p, netip.Addr{}, fmt.Errorf("no free subnet left: %w", errdefs.ErrUnavailable)
		}
	}
	gw := p.Addr().Next()
	if gateway != "" {
		var err error
		if gw, err = netip.ParseAddr(gateway); err != nil || !p.Contains(gw) {
			return p, gw, fmt.Errorf("invalid gateway %q: must be in %s: %w", gateway, p, errdefs.ErrInvalidArgument)
		}
	}
	return p, gw, nil
}

// hostRoutes lists the host's IPv4 routes other than the default route
// (/proc/net/route: hex little-endian destination and mask).
func hostRoutes() []netip.Prefix {
	f, err := os.Open("/proc/net/route")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []netip.Prefix
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		fl := strings.Fields(sc.Text())
		if len(fl) < 8 {
			continue
		}
		dst, err1 := hex.DecodeString(fl[1])
		mask, err2 := hex.DecodeString(fl[7])
		if err1 != nil || err2 != nil || len(dst) != 4 || len(mask) != 4 {
			continue
		}
		m, _ := strconv.ParseUint(fl[7], 16, 32)
		bits := 0
		for v := uint32(m); v != 0; v &= v - 1 {
			bits++
		}
		if bits == 0 {
			continue
		}
		a := netip.AddrFrom4([4]byte{dst[3], dst[2], dst[1], dst[0]})
		out = append(out, netip.PrefixFrom(a, bits).Masked())
	}
	return out
}

// writeFileAtomic writes data through a temporary file and a rename, so a
// reader never sees half a file, creating the directory as needed.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o711); err != nil {
		return err
	}
	return atomicfile.Write(path, data, mode, atomicfile.SyncFile)
}

// RemoveAll removes every network of the store, the default one included,
// with its bridge, isolation rules and DNS server: for tests and for
// resetting an instance. Attached containers must be detached first.
func (s *Store) RemoveAll() error {
	nets, err := s.listLocked()
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range nets {
		func() {
			unlock, err := s.lock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			defer unlock()
			_ = s.stopDNSLocked(n.Name)
			if err := s.removeHostLocked(n); err != nil {
				errs = append(errs, err)
			}
			_ = os.RemoveAll(s.DNSDir(n.Name))
			_ = os.RemoveAll(filepath.Join(s.ipamDir(), n.Name))
			_ = os.Remove(s.metaPath(n.Name))
			_ = os.Remove(s.confPath(n.Name))
		}()
	}
	return errors.Join(errs...)
}
