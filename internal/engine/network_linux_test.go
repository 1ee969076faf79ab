package engine

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/network"
	"github.com/berth-dev/berth/internal/testutil"
	"github.com/moby/moby/api/types/container"
	nettypes "github.com/moby/moby/api/types/network"
)

// The test binary doubles as `berth network dns-serve` (BERTH_DNS_BINARY
// points at it), so the DNS tests run the real server process.
func init() {
	if os.Getenv("BERTH_TEST_DNS_SERVE") == "1" && len(os.Args) > 2 && os.Args[1] == network.DNSCommand[0] && os.Args[2] == network.DNSCommand[1] {
		if err := network.DNSMain(os.Args[3:]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
}

// netEnv is an engine on temporary directories with the runtime, whose
// networks (bridges named from the temporary root, free subnets) are all
// removed when the test ends.
type netEnv struct {
	e       *Engine
	rt      string
	rootfs  string
	mu      sync.Mutex
	running []*netCtr
}

type netCtr struct {
	c    *Container
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
}

// syncBuffer is a bytes.Buffer that the exec copier writes while the
// test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newNetEnv(t *testing.T) *netEnv {
	t.Helper()
	testutil.RequiresRoot(t)
	if _, err := os.Stat("/usr/lib/cni/bridge"); err != nil {
		t.Skip("containernetworking-plugins is not installed")
	}
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Skip("iptables is not installed")
	}
	rt, cleanup, err := testutil.RuntimeBinary()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cleanup)
	rootfs, err := testutil.BusyboxRootfs()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	e, err := Open(Options{Root: filepath.Join(dir, "root"), State: filepath.Join(dir, "state"), Runtime: rt})
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("BERTH_DNS_BINARY", os.Args[0])
	t.Setenv("BERTH_TEST_DNS_SERVE", "1")
	env := &netEnv{e: e, rt: rt, rootfs: rootfs}
	t.Cleanup(func() {
		env.mu.Lock()
		defer env.mu.Unlock()
		for _, r := range env.running {
			env.stop(r)
		}
		if s, err := e.networks(); err == nil {
			_ = s.RemoveAll()
		}
	})
	return env
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newContainer writes a container record for script.
// newContainer records a container; ep, when not nil, is its create
// request's endpoint settings on its network mode's network.
func (env *netEnv) newContainer(t *testing.T, name, script string, hc container.HostConfig, ep *nettypes.EndpointSettings) *Container {
	t.Helper()
	if hc.Tmpfs == nil {
		hc.Tmpfs = map[string]string{"/tmp": ""} // the rootfs is the read-only fixture
	}
	c := &Container{
		ID: randomHex(32), Name: name,
		Config:     container.Config{Cmd: []string{"sh", "-c", script}, Hostname: name},
		HostConfig: hc,
	}
	if ep != nil {
		eps, err := createEndpoints(&hc, &nettypes.NetworkingConfig{EndpointsConfig: map[string]*nettypes.EndpointSettings{netMode(c): ep}}, env.e.sameNetwork)
		if err != nil {
			t.Fatal(err)
		}
		c.Endpoints = eps
	}
	if err := env.e.addContainer(c); err != nil {
		t.Fatal(err)
	}
	return c
}

// start runs c through setupNetwork and the runtime, as Engine.Start
// does: the namespace from setupNetwork in the spec, the network files
// mounted. The container runs in the background until stopped.
func (env *netEnv) start(t *testing.T, c *Container) *netCtr {
	t.Helper()
	ctx := context.Background()
	nsPath, err := env.e.setupNetwork(ctx, c)
	if err != nil {
		t.Fatalf("setupNetwork %s: %v", c.Name, err)
	}
	bundle := t.TempDir()
	s, err := buildSpec(c, env.rootfs)
	if err != nil {
		t.Fatal(err)
	}
	s.Root.Readonly = true // the shared fixture is mounted read-only
	applyNetworkNamespace(s, c, nsPath)
	s.Mounts = append(s.Mounts, env.e.networkMounts(c)...)
	b, _ := json.Marshal(s)
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	r := &netCtr{c: c, out: &syncBuffer{}, done: make(chan struct{})}
	r.cmd = exec.Command(env.rt, "--root", env.e.runtimeRoot(), "run", "--bundle", bundle, c.ID)
	r.cmd.Stdout, r.cmd.Stderr = r.out, r.out
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = r.cmd.Wait(); close(r.done) }()
	env.mu.Lock()
	env.running = append(env.running, r)
	env.mu.Unlock()
	return r
}

// run starts c and waits for it to exit, returning its output.
func (env *netEnv) run(t *testing.T, c *Container) string {
	t.Helper()
	r := env.start(t, c)
	select {
	case <-r.done:
	case <-time.After(30 * time.Second):
		t.Errorf("%s did not exit", c.Name)
	}
	env.stop(r)
	return r.out.String()
}

func (env *netEnv) stop(r *netCtr) {
	_ = exec.Command(env.rt, "--root", env.e.runtimeRoot(), "delete", "--force", r.c.ID).Run()
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		_ = r.cmd.Process.Kill()
	}
	_ = env.e.teardownNetwork(context.Background(), r.c)
}

func ipOf(t *testing.T, e *Engine, c *Container, net string) netip.Addr {
	t.Helper()
	es := e.networkSettings(c).Networks[net]
	if es == nil || !es.IPAddress.IsValid() {
		t.Fatalf("%s has no address on %s: %+v", c.Name, net, es)
	}
	return es.IPAddress
}

// waitFor polls until fn is true.
func waitFor(t *testing.T, what string, fn func() bool) {
	t.Helper()
	// Generous: other test packages load the machine (CI runs them side
	// by side), and a busy host delays output and DNS servers by seconds.
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		if fn() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestNetworkBridgeTraffic(t *testing.T) {
	env := newNetEnv(t)
	for _, tc := range []struct {
		name, server, client string
	}{
		// The server listens again after each connection, so a client
		// that connects early (or a stray probe) cannot end the test.
		{"tcp", "while :; do nc -l -p 5000; done", "echo over-tcp | nc -w 3 %s 5000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := env.start(t, env.newContainer(t, "srv-"+tc.name, tc.server, container.HostConfig{}, nil))
			ip := ipOf(t, env.e, srv.c, "bridge")
			want := "over-" + tc.name
			var last string
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("server output: %q\nlast client output: %q", srv.out.String(), last)
				}
			})
			waitFor(t, "traffic", func() bool {
				last = env.run(t, env.newContainer(t, "cli-"+tc.name+randomHex(3), fmt.Sprintf(tc.client, ip), container.HostConfig{}, nil))
				return strings.Contains(srv.out.String(), want)
			})
		})
	}
}

// TestNetworkUDP sends DNS queries (UDP) from a container to a server in
// another container's namespace across the bridge: busybox's nc has no
// UDP mode, so the server is network.ServeDNSConn on a socket opened in
// the server container's namespace.
func TestNetworkUDP(t *testing.T) {
	env := newNetEnv(t)
	srv := env.start(t, env.newContainer(t, "udpsrv", "sleep 60", container.HostConfig{}, nil))
	ip := ipOf(t, env.e, srv.c, "bridge")
	pc, err := listenUDPIn(env.e.netnsPath(srv.c.ID), netip.AddrPortFrom(ip, 53))
	if err != nil {
		t.Fatal(err)
	}
	recs := t.TempDir()
	b, _ := json.Marshal(network.Record{ID: randomHex(32), Name: "udp-probe", IPv4: netip.MustParseAddr("192.0.2.99")})
	if err := os.WriteFile(filepath.Join(recs, "x.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = network.ServeDNSConn(ctx, pc, recs, nil) }()
	out := env.run(t, env.newContainer(t, "udpcli", "nslookup udp-probe "+ip.String(), container.HostConfig{}, nil))
	if !strings.Contains(out, "192.0.2.99") {
		t.Fatalf("no UDP answer across the bridge:\n%s", out)
	}
}

// listenUDPIn opens a UDP socket inside the namespace at nsPath: a socket
// belongs to the namespace of the thread that created it.
func listenUDPIn(nsPath string, addr netip.AddrPort) (pc net.PacketConn, err error) {
	err = network.InNetNS(nsPath, func() (err error) {
		pc, err = net.ListenPacket("udp", addr.String())
		return err
	})
	return pc, err
}

func TestNetworkFiles(t *testing.T) {
	env := newNetEnv(t)
	hc := container.HostConfig{
		DNS:        []netip.Addr{netip.MustParseAddr("192.0.2.53")},
		DNSSearch:  []string{"example.test"},
		ExtraHosts: []string{"db.local:192.0.2.7", "gw:host-gateway"},
	}
	c := env.newContainer(t, "files", "cat /etc/hostname /etc/hosts /etc/resolv.conf; ip -o -4 addr show eth0; ip route", hc,
		&nettypes.EndpointSettings{MacAddress: nettypes.HardwareAddr{0x02, 0x42, 0x0a, 0, 0, 0x99}})
	out := env.run(t, c)
	for _, want := range []string{"files\n", "192.0.2.7\tdb.local", "nameserver 192.0.2.53", "search example.test", "default via", "\tfiles\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("want %q in:\n%s", want, out)
		}
	}
	if !strings.Contains(out, "\tgw\n") {
		t.Errorf("host-gateway not resolved:\n%s", out)
	}
}

func TestNetworkPublishedPort(t *testing.T) {
	env := newNetEnv(t)
	hc := container.HostConfig{PortBindings: nettypes.PortMap{
		nettypes.MustParsePort("80/tcp"): {{}},
	}}
	srv := env.start(t, env.newContainer(t, "web", "mkdir -p /tmp/w && echo hello-published > /tmp/w/index.html && httpd -f -p 80 -h /tmp/w", hc, nil))
	ports := env.e.networkSettings(srv.c).Ports[nettypes.MustParsePort("80/tcp")]
	if len(ports) != 1 || ports[0].HostPort == "" || ports[0].HostPort == "0" {
		t.Fatalf("ports: %+v", ports)
	}
	hosts := []string{"127.0.0.1"}
	if a := hostAddress(); a != "" {
		hosts = append(hosts, a)
	}
	var url, body string
	t.Cleanup(func() {
		if t.Failed() && url != "" {
			out, _ := exec.Command("iptables-save", "-t", "nat").Output()
			t.Logf("%s answered %q\ncontainer output: %s\n%s", url, body, srv.out.String(), out)
		}
	})
	for _, h := range hosts {
		url = "http://" + net.JoinHostPort(h, ports[0].HostPort) + "/"
		// Until httpd listens the port refuses at once: a count of
		// attempts (it was 50, some 5 s) bounds nothing but the time the
		// container has to start, which a loaded machine can exceed.
		waitFor(t, url+" to answer", func() bool {
			body = fetch(url)
			return strings.Contains(body, "hello-published")
		})
	}
	// Another container reaching the published port through the host.
	if a := hostAddress(); a != "" {
		out := env.run(t, env.newContainer(t, "hairpin", httpGet(net.JoinHostPort(a, ports[0].HostPort)), container.HostConfig{}, nil))
		if !strings.Contains(out, "hello-published") {
			t.Errorf("from a container: %s", out)
		}
	}
	// The same host port again is a clear error at start.
	hc2 := container.HostConfig{PortBindings: nettypes.PortMap{nettypes.MustParsePort("80/tcp"): {{HostPort: ports[0].HostPort}}}}
	c2 := env.newContainer(t, "web2", "true", hc2, nil)
	if _, err := env.e.setupNetwork(context.Background(), c2); err == nil || !strings.Contains(err.Error(), "already allocated") {
		t.Fatalf("second publish of %s: %v", ports[0].HostPort, err)
	}
	if _, err := os.Stat(env.e.netnsPath(c2.ID)); !os.IsNotExist(err) {
		t.Fatalf("failed setup left its namespace: %v", err)
	}
}

// hostAddress is the host's own address on its default-route interface.
func hostAddress() string {
	c, err := net.Dial("udp", "192.0.2.1:9") // no packet is sent: this only picks a source address
	if err != nil {
		return ""
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).IP.String()
}

// fetch GETs url from the host.
func fetch(url string) string {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// httpGet is a shell command that fetches http://host:port/ with nc
// (Debian's busybox wget crashes on this kernel).
func httpGet(hostPort string) string {
	h, p, _ := net.SplitHostPort(hostPort)
	if p == "" {
		h, p = hostPort, "80"
	}
	return fmt.Sprintf(`printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 3 %s %s`, h, p)
}

func TestNetworkDNSAndIsolation(t *testing.T) {
	env := newNetEnv(t)
	ctx := context.Background()
	if _, err := env.e.NetworkCreate(ctx, "app", NetworkCreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.e.NetworkCreate(ctx, "other", NetworkCreateOptions{}); err != nil {
		t.Fatal(err)
	}
	web := env.start(t, env.newContainer(t, "web", "mkdir -p /tmp/w && echo hello-dns > /tmp/w/index.html && httpd -f -p 80 -h /tmp/w",
		container.HostConfig{NetworkMode: "app"}, &nettypes.EndpointSettings{Aliases: []string{"www", "frontend"}}))
	webIP := ipOf(t, env.e, web.c, "app")
	for _, name := range []string{"web", "www", "frontend", web.c.ID[:12]} {
		t.Run("resolve "+name, func(t *testing.T) {
			waitFor(t, name, func() bool {
				out := env.run(t, env.newContainer(t, "q"+randomHex(4), httpGet(name), container.HostConfig{NetworkMode: "app"}, nil))
				return strings.Contains(out, "hello-dns")
			})
		})
	}
	t.Run("resolv.conf points at the gateway", func(t *testing.T) {
		out := env.run(t, env.newContainer(t, "rc", "cat /etc/resolv.conf", container.HostConfig{NetworkMode: "app"}, nil))
		n, _ := env.e.NetworkInspect(ctx, "app")
		if gw := n.IPAM.Config[0].Gateway.String(); !strings.Contains(out, "nameserver "+gw) {
			t.Fatalf("want nameserver %s:\n%s", gw, out)
		}
	})
	t.Run("unknown name", func(t *testing.T) {
		out := env.run(t, env.newContainer(t, "nx", "nslookup nosuchcontainer.invalid 2>&1; echo rc=$?", container.HostConfig{NetworkMode: "app"}, nil))
		if !strings.Contains(out, "rc=1") {
			t.Fatalf("unknown name resolved:\n%s", out)
		}
	})
	t.Run("isolated from another network", func(t *testing.T) {
		out := env.run(t, env.newContainer(t, "iso", httpGet(webIP.String())+" 2>&1; echo rc=$?", container.HostConfig{NetworkMode: "other"}, nil))
		if strings.Contains(out, "hello-dns") || !strings.Contains(out, "rc=1") {
			t.Fatalf("reached %s across networks:\n%s", webIP, out)
		}
		out = env.run(t, env.newContainer(t, "iso2", "nslookup web 2>&1; echo rc=$?", container.HostConfig{NetworkMode: "other"}, nil))
		if strings.Contains(out, webIP.String()) {
			t.Fatalf("resolved web from another network:\n%s", out)
		}
	})
	t.Run("connect joins the network", func(t *testing.T) {
		// Retried inside: the connect, the DNS record and the server may
		// each lag on a loaded machine.
		c := env.newContainer(t, "joiner", `for i in $(seq 20); do r=$(`+httpGet("web")+` 2>&1); case "$r" in *hello-dns*) break;; esac; sleep 1; done; echo "$r"; ip -o link`, container.HostConfig{NetworkMode: "other"}, nil)
		if err := env.e.NetworkConnect(ctx, "app", c.ID, NetworkConnectOptions{}); err != nil {
			t.Fatal(err)
		}
		out := env.run(t, c)
		if !strings.Contains(out, "hello-dns") || !strings.Contains(out, "eth1") {
			t.Fatalf("connected container:\n%s", out)
		}
	})
	if err := env.e.NetworkRemove(ctx, "app"); err == nil {
		t.Fatal("removed a network with a running container")
	}
	env.stop(web)
	names, err := env.e.NetworkPrune(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = names
}

func TestNetworkInternal(t *testing.T) {
	env := newNetEnv(t)
	ctx := context.Background()
	if _, err := env.e.NetworkCreate(ctx, "priv", NetworkCreateOptions{Internal: true}); err != nil {
		t.Fatal(err)
	}
	a := hostAddress()
	if a == "" {
		t.Skip("no host address")
	}
	l, err := net.Listen("tcp", net.JoinHostPort(a, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_, _ = io.WriteString(c, "reached-host\n")
			c.Close()
		}
	}()
	out := env.run(t, env.newContainer(t, "int", "ip route; nc -w 2 "+strings.ReplaceAll(l.Addr().String(), ":", " ")+" 2>&1; echo rc=$?", container.HostConfig{NetworkMode: "priv"}, nil))
	if strings.Contains(out, "default") || strings.Contains(out, "reached-host") {
		t.Fatalf("internal network reached out:\n%s", out)
	}
}

func TestNetworkModes(t *testing.T) {
	env := newNetEnv(t)
	t.Run("none", func(t *testing.T) {
		out := env.run(t, env.newContainer(t, "none", "ip -o link", container.HostConfig{NetworkMode: "none"}, nil))
		if !strings.Contains(out, "lo:") || strings.Contains(out, "eth0") {
			t.Fatalf("none:\n%s", out)
		}
	})
	t.Run("host", func(t *testing.T) {
		host, _ := os.ReadFile("/proc/net/dev")
		out := env.run(t, env.newContainer(t, "host", "cat /proc/net/dev", container.HostConfig{NetworkMode: "host"}, nil))
		if !strings.Contains(string(host), "eth0") || !strings.Contains(out, "eth0") {
			t.Fatalf("host mode does not see the host's interfaces:\n%s", out)
		}
	})
	t.Run("container", func(t *testing.T) {
		// The listener restarts after each connection: with a one-shot nc,
		// an attempt that connected but reported failure (nc -w on a busy
		// host) ended the listener, and every later attempt was refused.
		srv := env.start(t, env.newContainer(t, "owner", "while :; do nc -l -p 7000; done", container.HostConfig{}, nil))
		// Join the owner's namespace by path, as setupNetwork resolves
		// container:NAME for a running container.
		joiner := env.newContainer(t, "joiner", "sleep 0.5; echo shared-ns | nc -w 2 127.0.0.1 7000", container.HostConfig{NetworkMode: "none"}, nil)
		s, err := buildSpec(joiner, env.rootfs)
		if err != nil {
			t.Fatal(err)
		}
		applyNetworkNamespace(s, srv.c, env.e.netnsPath(srv.c.ID))
		var path string
		for _, n := range s.Linux.Namespaces {
			if n.Type == "network" {
				path = n.Path
			}
		}
		waitFor(t, "a message through the shared namespace", func() bool {
			_ = exec.Command("nsenter", "--net="+path, "--", "busybox", "sh", "-c", "echo shared-ns | busybox nc -w 2 127.0.0.1 7000").Run()
			return strings.Contains(srv.out.String(), "shared-ns")
		})
	})
}

// TestNetworkNoLeaks attaches and tears down many containers, some torn
// down only "after a crash" (the record gone, teardown from the CNI cache
// alone), and checks that no veth, rule, namespace or lease is left.
func TestNetworkNoLeaks(t *testing.T) {
	env := newNetEnv(t)
	ctx := context.Background()
	store, err := env.e.networks()
	if err != nil {
		t.Fatal(err)
	}
	n, err := store.Get(network.DefaultNetwork)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := 0; i < 30; i++ {
		hc := container.HostConfig{}
		if i%3 == 0 {
			hc.PortBindings = nettypes.PortMap{nettypes.MustParsePort("80/tcp"): {{}}}
		}
		c := env.newContainer(t, fmt.Sprintf("leak%d", i), "true", hc, nil)
		if _, err := env.e.setupNetwork(ctx, c); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.ID)
		if i%5 == 0 {
			// A crash: the record directory is gone before teardown.
			_ = os.RemoveAll(env.e.recordDir(c.ID))
		}
		if err := env.e.teardownNetwork(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	// Teardown leaves a container's veth to its namespace's end, which
	// the kernel finishes in asynchronous cleanup work: allow it a moment.
	var out []byte
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		out, _ = exec.Command("ip", "-o", "link", "show", "master", n.Bridge).CombinedOutput()
		if !strings.Contains(string(out), "veth") || time.Now().After(deadline) {
			break
		}
	}
	if strings.Contains(string(out), "veth") {
		t.Errorf("veths left on %s:\n%s", n.Bridge, out)
	}
	if eps, _ := os.ReadDir(filepath.Join(env.e.State(), "network", "endpoints")); len(eps) != 0 {
		t.Errorf("%d containers' endpoint records left", len(eps))
	}
	rules, _ := exec.Command("iptables-save").Output()
	for _, id := range ids {
		if bytes.Contains(rules, []byte(id)) {
			t.Errorf("iptables rules left for %s", id[:12])
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(env.e.State(), "netns")); len(ents) != 0 {
		t.Errorf("namespaces left: %d", len(ents))
	}
	leases, _ := os.ReadDir(filepath.Join(env.e.State(), "network", "ipam", n.Name))
	for _, l := range leases {
		if _, err := netip.ParseAddr(l.Name()); err == nil {
			t.Errorf("lease left: %s", l.Name())
		}
	}
}

// TestNetworkIPv6 runs a dual-stack network: containers get an address
// from each subnet (usable at once: no DAD), an IPv6 default route, and
// reach each other over IPv6 by address and by name (AAAA from the
// network's DNS server).
func TestNetworkIPv6(t *testing.T) {
	env := newNetEnv(t)
	ctx := context.Background()
	// A random ULA /64: other test processes run dual-stack networks too,
	// and two bridges must not claim one prefix.
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	subnet6 := fmt.Sprintf("fd%02x:%02x%02x:%02x%02x::/64", b[0], b[1], b[2], b[3], b[4])
	if _, err := env.e.NetworkCreate(ctx, "v6", NetworkCreateOptions{IPv6: true, Subnet6: subnet6}); err != nil {
		t.Fatal(err)
	}
	web := env.start(t, env.newContainer(t, "web6", "mkdir -p /tmp/w && echo hello-v6 > /tmp/w/index.html && httpd -f -p 80 -h /tmp/w",
		container.HostConfig{NetworkMode: "v6"}, nil))
	es := env.e.networkSettings(web.c).Networks["v6"]
	if es == nil || !es.GlobalIPv6Address.IsValid() || !netip.MustParsePrefix(subnet6).Contains(es.GlobalIPv6Address) {
		t.Fatalf("no IPv6 address from %s: %+v", subnet6, es)
	}
	if !es.IPAddress.IsValid() {
		t.Fatalf("dual stack without an IPv4 address: %+v", es)
	}
	t.Run("address and route", func(t *testing.T) {
		out := env.run(t, env.newContainer(t, "show6", "ip -6 addr show dev eth0 scope global; ip -6 route", container.HostConfig{NetworkMode: "v6"}, nil))
		if !strings.Contains(out, "scope global") || strings.Contains(out, "tentative") || !strings.Contains(out, "default via") {
			t.Fatalf("want a usable address and a default route:\n%s", out)
		}
	})
	// busybox's wget crashes on bracketed IPv6 URLs; nc speaks HTTP/1.0.
	const get = `printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 3 %s 80`
	for _, target := range []string{es.GlobalIPv6Address.String(), "web6"} {
		t.Run("fetch "+target, func(t *testing.T) {
			script := fmt.Sprintf(get, target)
			if target == "web6" {
				// By name over IPv6 only: the record's AAAA must answer.
				script = "a=$(nslookup -type=AAAA web6 2>/dev/null | awk '/^Address/ && /:.*:/ {print $NF}' | tail -1); echo aaaa=$a; " + fmt.Sprintf(get, "$a")
			}
			var last string
			waitFor(t, "IPv6 traffic to "+target, func() bool {
				last = env.run(t, env.newContainer(t, "c6"+randomHex(3), script, container.HostConfig{NetworkMode: "v6"}, nil))
				return strings.Contains(last, "hello-v6")
			})
			if target == "web6" && !strings.Contains(last, "aaaa="+es.GlobalIPv6Address.String()) {
				t.Fatalf("AAAA of web6 is not %s:\n%s", es.GlobalIPv6Address, last)
			}
		})
	}
}

// TestNetworkPruneReclaimsOrphans: attachments of a container whose
// record is gone (its rm was killed between removing the record and the
// network teardown) are reclaimed by network prune.
func TestNetworkPruneReclaimsOrphans(t *testing.T) {
	env := newNetEnv(t)
	ctx := context.Background()
	c := env.newContainer(t, "orphan", "true", container.HostConfig{}, nil)
	if _, err := env.e.setupNetwork(ctx, c); err != nil {
		t.Fatal(err)
	}
	store, err := env.e.networks()
	if err != nil {
		t.Fatal(err)
	}
	if atts, _ := store.Attachments(c.ID); len(atts) != 1 {
		t.Fatalf("attachments: %+v", atts)
	}
	if err := os.RemoveAll(env.e.recordDir(c.ID)); err != nil {
		t.Fatal(err)
	}
	if _, err := env.e.NetworkPrune(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if atts, _ := store.Attachments(c.ID); len(atts) != 0 {
		t.Fatalf("attachments left: %+v", atts)
	}
	if leases, _ := store.Leases(network.DefaultNetwork); len(leases) != 0 {
		t.Fatalf("leases left: %v", leases)
	}
	if network.IsNetNS(env.e.netnsPath(c.ID)) {
		t.Fatal("namespace left")
	}
}
