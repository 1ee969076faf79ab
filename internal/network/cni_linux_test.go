package network

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/testutil"
	"github.com/vishvananda/netlink"
)

// testStore opens a store in a temporary root whose networks get unique
// bridges (hashed from the root) and free subnets; cleanup tears down
// every attachment and network so no bridge, rule or lease survives.
func testStore(t *testing.T) *Store {
	t.Helper()
	testutil.RequiresRoot(t)
	if _, err := os.Stat("/usr/lib/cni/bridge"); err != nil {
		t.Skip("containernetworking-plugins is not installed")
	}
	dir := t.TempDir()
	s, err := Open(Options{Root: filepath.Join(dir, "root"), State: filepath.Join(dir, "state")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ents, _ := os.ReadDir(filepath.Join(dir, "state", "netns"))
		for _, e := range ents {
			_ = s.Detach(context.Background(), "", e.Name(), "")
			_ = RemoveNetNS(filepath.Join(dir, "state", "netns", e.Name()))
		}
		nets, _ := s.List()
		for _, n := range nets {
			_ = removeIsolation(n)
			deleteLink(n.Bridge)
			_ = s.Remove(n.Name)
		}
	})
	return s
}

func randomID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newNS makes a namespace for a fake container ID.
func newNS(t *testing.T, s *Store) (id, path string) {
	t.Helper()
	id = randomID()
	path = filepath.Join(s.opts.State, "netns", id)
	if err := NewNetNS(path); err != nil {
		t.Fatal(err)
	}
	return id, path
}

// inNS runs a command in the network namespace at path.
func inNS(path string, args ...string) *exec.Cmd {
	return exec.Command("nsenter", append([]string{"--net=" + path, "--"}, args...)...)
}

func TestNetNSLoopback(t *testing.T) {
	testutil.RequiresRoot(t)
	path := filepath.Join(t.TempDir(), "ns")
	if err := NewNetNS(path); err != nil {
		t.Fatal(err)
	}
	defer RemoveNetNS(path)
	if !IsNetNS(path) {
		t.Fatal("not a netns mount")
	}
	out, err := inNS(path, "ip", "-o", "link").CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if strings.Count(string(out), "\n") != 1 || !strings.Contains(string(out), "lo:") || !strings.Contains(string(out), "UP") {
		t.Fatalf("want only lo, up: %s", out)
	}
	if err := RemoveNetNS(path); err != nil {
		t.Fatal(err)
	}
	if err := RemoveNetNS(path); err != nil {
		t.Fatalf("second remove: %v", err)
	}
}

// drivers are the two ways a network runs; every attach test runs on
// both (one shared suite for the contract).
var drivers = []string{"native", "cni"}

// createNet creates a network for driver: a network as berth creates it
// is native; editing its conflist (here: CNI's disableCheck) hands it to
// the CNI plugins, as a user's own conflist would.
func createNet(t *testing.T, s *Store, name, driver string) *Network {
	t.Helper()
	return createNetWith(t, s, name, driver, CreateOptions{})
}

// createNetWith is createNet with create options (a dual-stack network).
func createNetWith(t *testing.T, s *Store, name, driver string, o CreateOptions) *Network {
	t.Helper()
	n, err := s.Create(name, o)
	if err != nil {
		t.Fatal(err)
	}
	if driver == "cni" {
		b, err := os.ReadFile(s.confPath(name))
		if err != nil {
			t.Fatal(err)
		}
		var conf map[string]any
		if err := json.Unmarshal(b, &conf); err != nil {
			t.Fatal(err)
		}
		conf["disableCheck"] = true
		if b, err = json.Marshal(conf); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(s.confPath(name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.Native(n); got != (driver == "native") {
		t.Fatalf("Native = %v for a %s network", got, driver)
	}
	return n
}

func TestAttachTrafficAndTeardown(t *testing.T) {
	for _, d := range drivers {
		t.Run(d, func(t *testing.T) { testAttachTrafficAndTeardown(t, d) })
	}
}

func testAttachTrafficAndTeardown(t *testing.T, driver string) {
	s := testStore(t)
	n := createNet(t, s, "t1", driver)
	var err error
	ctx := context.Background()
	id1, ns1 := newNS(t, s)
	id2, ns2 := newNS(t, s)
	r1, err := s.Attach(ctx, n, Attachment{ContainerID: id1, NetNS: ns1, MAC: "02:42:ac:11:00:42"})
	if err != nil {
		t.Fatal(err)
	}
	r2, err := s.Attach(ctx, n, Attachment{ContainerID: id2, NetNS: ns2, IPv4: n.Gateway.Next().Next().Next().Next()})
	if err != nil {
		t.Fatal(err)
	}
	if r1.IPv4.Addr() == r2.IPv4.Addr() || !n.Subnet.Contains(r1.IPv4.Addr()) || r1.Gateway != n.Gateway {
		t.Fatalf("results: %+v %+v (network %s gw %s)", r1, r2, n.Subnet, n.Gateway)
	}
	if r2.IPv4.Addr() != n.Gateway.Next().Next().Next().Next() {
		t.Fatalf("static IP not honoured: %s", r2.IPv4)
	}
	if r1.MAC != "02:42:ac:11:00:42" {
		t.Fatalf("mac: %q", r1.MAC)
	}
	if out, err := inNS(ns1, "busybox", "ping", "-c1", "-W2", r2.IPv4.Addr().String()).CombinedOutput(); err != nil {
		t.Fatalf("ping across the bridge: %v: %s", err, out)
	}
	// Teardown: the veth and lease are gone, and it is idempotent.
	for range 2 {
		if err := s.Detach(ctx, n.Name, id1, ""); err != nil {
			t.Fatal(err)
		}
	}
	if out, _ := inNS(ns1, "ip", "-o", "link").CombinedOutput(); strings.Contains(string(out), "eth0") {
		t.Fatalf("eth0 left after detach: %s", out)
	}
	if _, err := os.Lstat(filepath.Join(s.ipamDir(), n.Name, r1.IPv4.Addr().String())); !os.IsNotExist(err) {
		t.Fatalf("lease left: %v", err)
	}
	if atts, _ := s.Attachments(id1); len(atts) != 0 {
		t.Fatalf("cache left: %v", atts)
	}
}

func TestPublishedPort(t *testing.T) {
	for _, d := range drivers {
		t.Run(d, func(t *testing.T) { testPublishedPort(t, d) })
	}
}

func testPublishedPort(t *testing.T, driver string) {
	s := testStore(t)
	n := createNet(t, s, "pp", driver)
	var err error
	ctx := context.Background()
	id, ns := newNS(t, s)
	r, err := s.Attach(ctx, n, Attachment{ContainerID: id, NetNS: ns, Ports: []PortMapping{{ContainerPort: 8080, Protocol: "tcp"}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Ports) != 1 || r.Ports[0].HostPort == 0 {
		t.Fatalf("ports: %+v", r.Ports)
	}
	port := r.Ports[0].HostPort
	// A server in the namespace answers on the published port.
	srv := inNS(ns, "busybox", "sh", "-c", "echo hello-from-ns | busybox timeout 10 busybox nc -l -p 8080")
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Process.Kill()
	var got string
	for i := 0; i < 50 && got == ""; i++ {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			_ = c.SetDeadline(time.Now().Add(2 * time.Second))
			b := make([]byte, 64)
			k, _ := c.Read(b)
			got = strings.TrimSpace(string(b[:k]))
			c.Close()
		}
		if got == "" {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if got != "hello-from-ns" {
		t.Fatalf("127.0.0.1:%d answered %q", port, got)
	}
	// The same host port for another container is a conflict.
	id2, ns2 := newNS(t, s)
	_, err = s.Attach(ctx, n, Attachment{ContainerID: id2, NetNS: ns2, Ports: []PortMapping{{HostPort: port, ContainerPort: 80, Protocol: "tcp"}}})
	if !errdefs.IsConflict(err) {
		t.Fatalf("second publish of %d: %v", port, err)
	}
	// A port a host process listens on is a conflict too.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	hp := uint16(l.Addr().(*net.TCPAddr).Port)
	_, err = s.Attach(ctx, n, Attachment{ContainerID: id2, NetNS: ns2, Ports: []PortMapping{{HostIP: "127.0.0.1", HostPort: hp, ContainerPort: 80, Protocol: "tcp"}}})
	if !errdefs.IsConflict(err) {
		t.Fatalf("publish over a listener: %v", err)
	}
	if err := s.Detach(ctx, "", id, ""); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(s.portsDir()); len(ents) != 0 {
		t.Fatalf("port reservations left: %v", ents)
	}
	if rules, _ := exec.Command("iptables-save", "-t", "nat").Output(); strings.Contains(string(rules), id) {
		t.Fatalf("nat rules left for %s", id[:12])
	}
}

// TestNativeCrashedAttach: an attach killed after it leased an address,
// made the veth and published a port, before it returned, is torn down
// completely by the next teardown, from the record alone.
func TestNativeCrashedAttach(t *testing.T) {
	s := testStore(t)
	n := createNet(t, s, "crash", "native")
	id, ns := newNS(t, s)
	ports := []PortMapping{{HostPort: 0, ContainerPort: 80, Protocol: "tcp"}}
	ports, err := s.reservePorts(id, ports)
	if err != nil {
		t.Fatal(err)
	}
	ep := &endpoint{ContainerID: id, Network: n.Name, IfName: "eth0", Bridge: n.Bridge, NetNS: ns, Ports: ports}
	if err := s.writeEndpoint(ep); err != nil {
		t.Fatal(err)
	}
	br, err := s.ensureBridge(n)
	if err != nil {
		t.Fatal(err)
	}
	ip, err := s.ipamOf(n.Name).allocate(n.Subnet, n.IPRange, n.Gateway, netip.Addr{}, id, "eth0")
	if err != nil {
		t.Fatal(err)
	}
	res := &Result{IPv4: netip.PrefixFrom(ip, n.Subnet.Bits())}
	if err := s.plumb(n, Attachment{ContainerID: id, NetNS: ns, IfName: "eth0"}, br, res, macFor(ip), true); err != nil {
		t.Fatal(err)
	}
	if err := publishPorts(n, id, ip, netip.Addr{}, ports); err != nil {
		t.Fatal(err)
	}
	// The "next command": a second Store on the same directories.
	s2, _ := Open(s.opts)
	if atts, _ := s2.Attachments(id); len(atts) != 1 || atts[0].Network != n.Name {
		t.Fatalf("attachments: %+v", atts)
	}
	if err := s2.Detach(context.Background(), "", id, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := netlink.LinkByName(vethName(id, "eth0")); err == nil {
		t.Error("veth left")
	}
	if l, _ := s2.Leases(n.Name); len(l) != 0 {
		t.Errorf("leases left: %v", l)
	}
	if rules, _ := exec.Command("iptables-save", "-t", "nat").Output(); strings.Contains(string(rules), id) || strings.Contains(string(rules), dnatChain(id)) {
		t.Error("nat rules left")
	}
	if ents, _ := os.ReadDir(s2.portsDir()); len(ents) != 0 {
		t.Errorf("port reservations left: %v", ents)
	}
	if atts, _ := s2.Attachments(id); len(atts) != 0 {
		t.Errorf("records left: %+v", atts)
	}
}

// TestNativeRestartBeforeNamespaceEnd: DetachAll leaves the veth to the
// namespace's end; a container that starts again before the kernel has
// destroyed the old namespace (here: it is still mounted) gets its
// interface all the same.
func TestNativeRestartBeforeNamespaceEnd(t *testing.T) {
	s := testStore(t)
	n := createNet(t, s, "restart", "native")
	ctx := context.Background()
	id, ns := newNS(t, s)
	if _, err := s.Attach(ctx, n, Attachment{ContainerID: id, NetNS: ns}); err != nil {
		t.Fatal(err)
	}
	if err := s.DetachAll(ctx, id); err != nil {
		t.Fatal(err)
	}
	// An open descriptor keeps the old namespace, and its veth, alive
	// past RemoveNetNS.
	hold, err := os.Open(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Close()
	if err := RemoveNetNS(ns); err != nil {
		t.Fatal(err)
	}
	if _, err := netlink.LinkByName(vethName(id, "eth0")); err != nil {
		t.Fatalf("the old veth should live on with its namespace: %v", err)
	}
	if err := NewNetNS(ns); err != nil {
		t.Fatal(err)
	}
	r, err := s.Attach(ctx, n, Attachment{ContainerID: id, NetNS: ns})
	if err != nil {
		t.Fatalf("second attach: %v", err)
	}
	if out, err := inNS(ns, "ip", "-o", "addr", "show", "eth0").CombinedOutput(); err != nil || !strings.Contains(string(out), r.IPv4.String()) {
		t.Fatalf("eth0 in the new namespace: %v: %s", err, out)
	}
	if err := s.Detach(ctx, "", id, ""); err != nil {
		t.Fatal(err)
	}
}
