//go:build linux

package network_test

import (
	"crypto/rand"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func (e *env) ipOf(ctr string) string {
	e.t.Helper()
	ip := strings.TrimSpace(e.ok("inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", ctr))
	if f := strings.Fields(ip); len(f) > 0 {
		return f[0]
	}
	e.t.Fatalf("%s has no address", ctr)
	return ""
}

func TestBridgeTCP(t *testing.T) {
	e := newEnv(t)
	// The listener restarts after each connection: with a one-shot nc, an
	// attempt that connected without delivering (nc -w giving up on a busy
	// host) ended it, and every later attempt was refused until the
	// timeout (seen under load).
	e.ok("run", "-d", "--name", "srv", "busybox", "sh", "-c", "while :; do nc -l -p 5000; done")
	ip := e.ipOf("srv")
	var last string
	t.Cleanup(func() {
		if t.Failed() && last != "" {
			t.Logf("last attempt: %s", last)
		}
	})
	eventually(t, 30*time.Second, "tcp across the bridge", func() bool {
		out, errOut, code := e.run(nil, "run", "--rm", "busybox", "sh", "-c", "echo over-tcp | nc -w 2 "+ip+" 5000")
		logs, _, _ := e.run(nil, "logs", "srv")
		last = fmt.Sprintf("sender exit %d: %s%s\nsrv logs: %s", code, out, errOut, logs)
		return strings.Contains(logs, "over-tcp")
	})
}

// UDP between containers is covered by internal/engine's TestNetworkUDP
// and, from containers to the network's DNS server, by TestUserNetworkDNS:
// busybox's nc has no UDP mode.

func TestPublishedPort(t *testing.T) {
	e := newEnv(t)
	e.ok("run", "-d", "--name", "web", "-p", "80", "--tmpfs", "/tmp", "busybox", "sh", "-c", webServer("hello-published"))
	port := strings.TrimSpace(e.ok("inspect", "--format", `{{(index (index .NetworkSettings.Ports "80/tcp") 0).HostPort}}`, "web"))
	if port == "" || port == "0" {
		t.Fatalf("no host port: %q", port)
	}
	hosts := []string{"127.0.0.1"}
	if a := hostAddress(); a != "" {
		hosts = append(hosts, a)
	}
	for _, h := range hosts {
		url := "http://" + net.JoinHostPort(h, port) + "/"
		eventually(t, 60*time.Second, url, func() bool { return strings.Contains(fetch(url), "hello-published") })
	}
	// A taken port is a clear error at run.
	_, stderr, code := e.run(nil, "run", "--rm", "-p", port+":80", "busybox", "true")
	if code == 0 || !strings.Contains(stderr, "already allocated") {
		t.Fatalf("second publish of %s: exit %d: %s", port, code, stderr)
	}
}

func TestUserNetworkDNS(t *testing.T) {
	e := newEnv(t)
	e.ok("network", "create", "app")
	e.ok("run", "-d", "--name", "web", "--network", "app", "--network-alias", "www", "--tmpfs", "/tmp", "busybox", "sh", "-c", webServer("hello-dns"))
	for _, name := range []string{"web", "www"} {
		eventually(t, 20*time.Second, "resolve "+name, func() bool {
			out, _, _ := e.run(nil, "run", "--rm", "--network", "app", "busybox", "sh", "-c", httpGet(name, "80"))
			return strings.Contains(out, "hello-dns")
		})
	}
	// Isolation: another network neither resolves nor reaches web.
	e.ok("network", "create", "other")
	ip := e.ipOf("web")
	out, _, _ := e.run(nil, "run", "--rm", "--network", "other", "busybox", "sh", "-c", httpGet(ip, "80")+"; nslookup web")
	if strings.Contains(out, "hello-dns") || strings.Contains(out, "Address: "+ip) {
		t.Fatalf("reached web from another network:\n%s", out)
	}
	if _, _, code := e.run(nil, "network", "rm", "app"); code == 0 {
		t.Fatal("removed a network in use")
	}
	e.ok("rm", "-f", "web")
	e.ok("network", "rm", "app", "other")
}

func TestContainerAndHostModes(t *testing.T) {
	e := newEnv(t)
	// The listener restarts after each connection: an attempt that
	// connected without delivering (the listener not yet reading, a
	// busy host) must not leave the later attempts nothing to reach.
	e.ok("run", "-d", "--name", "owner", "busybox", "sh", "-c", "while :; do nc -l -p 7000; done")
	var last string
	t.Cleanup(func() {
		if t.Failed() && last != "" {
			t.Logf("last attempt: %s", last)
		}
	})
	eventually(t, 30*time.Second, "shared namespace", func() bool {
		out, errOut, code := e.run(nil, "run", "--rm", "--network", "container:owner", "busybox", "sh", "-c", "echo shared-ns | nc -w 2 127.0.0.1 7000")
		logs, _, _ := e.run(nil, "logs", "owner")
		last = fmt.Sprintf("sender exit %d: %s%s\nowner logs: %s", code, out, errOut, logs)
		return strings.Contains(logs, "shared-ns")
	})
	// Other tests create and remove veths meanwhile: only interfaces the
	// host has both before and after the run must show inside.
	before, _ := os.ReadFile("/proc/net/dev")
	out := e.ok("run", "--rm", "--network", "host", "busybox", "cat", "/proc/net/dev")
	after, _ := os.ReadFile("/proc/net/dev")
	for _, l := range strings.Split(string(before), "\n")[2:] {
		name, _, ok := strings.Cut(strings.TrimSpace(l), ":")
		if !ok || !strings.Contains(string(after), name+":") {
			continue
		}
		if !strings.Contains(out, name+":") {
			t.Fatalf("host mode misses %s:\n%s", name, out)
		}
	}
	out = e.ok("run", "--rm", "--network", "none", "busybox", "ip", "-o", "link")
	if strings.Contains(out, "eth0") {
		t.Fatalf("--network none has eth0:\n%s", out)
	}
}

// TestNoLeaks runs 50 containers, some of them with the CLI killed -9
// mid-run, removes them all, and checks the host for leftovers.
func TestNoLeaks(t *testing.T) {
	e := newEnv(t)
	for i := 0; i < 50; i++ {
		args := []string{"run", "--rm", "busybox", "true"}
		if i%5 == 0 {
			args = []string{"run", "-p", "80", "busybox", "sleep", "30"}
			c := e.cmd(args...)
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(300 * time.Millisecond)
			_ = c.Process.Signal(syscall.SIGKILL)
			_ = c.Wait()
			continue
		}
		e.ok(args...)
	}
	ids := strings.Fields(e.ok("ps", "-aq", "--no-trunc"))
	for _, id := range ids {
		e.ok("rm", "-f", id)
	}
	br := strings.TrimSpace(e.ok("network", "inspect", "bridge", "--format", `{{index .Options "com.docker.network.bridge.name"}}`))
	// rm leaves a container's veth to its namespace's end, which the
	// kernel finishes in asynchronous cleanup work: allow it a moment.
	var out []byte
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		out, _ = exec.Command("ip", "-o", "link", "show", "master", br).CombinedOutput()
		if !strings.Contains(string(out), "veth") || time.Now().After(deadline) {
			break
		}
	}
	if strings.Contains(string(out), "veth") {
		t.Errorf("veths left on %s:\n%s", br, out)
	}
	rules, _ := exec.Command("iptables-save").Output()
	for _, id := range ids {
		if strings.Contains(string(rules), id) {
			t.Errorf("iptables rules left for %s", id[:12])
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(e.state, "netns")); len(ents) != 0 {
		t.Errorf("%d network namespaces left", len(ents))
	}
	leases, _ := filepath.Glob(filepath.Join(e.state, "network", "ipam", "bridge", "1*"))
	if len(leases) != 0 {
		t.Errorf("leases left: %v", leases)
	}
	if eps, _ := os.ReadDir(filepath.Join(e.state, "network", "endpoints")); len(eps) != 0 {
		t.Errorf("%d containers' endpoint records left", len(eps))
	}
}

// TestDualStack creates a network with an IPv4 and an IPv6 --subnet and
// talks IPv6 between two containers, by address and by name.
func TestDualStack(t *testing.T) {
	e := newEnv(t)
	// A random ULA /64: other tests on the host run IPv6 networks too.
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	sub6 := fmt.Sprintf("fd%02x:%02x%02x:%02x::/64", b[0], b[1], b[2], b[3])
	e.ok("network", "create", "--subnet", sub6, "ds")
	defer e.run(nil, "network", "rm", "ds")
	e.ok("run", "-d", "--name", "web6", "--network", "ds", "-p", "80", "--tmpfs", "/tmp", "busybox", "sh", "-c", webServer("hello-v6"))
	defer e.run(nil, "rm", "-f", "web6")
	ip6 := strings.TrimSpace(e.ok("inspect", "--format", "{{range .NetworkSettings.Networks}}{{.GlobalIPv6Address}}{{end}}", "web6"))
	if a, err := netip.ParseAddr(ip6); err != nil || !netip.MustParsePrefix(sub6).Contains(a) {
		t.Fatalf("web6 has IPv6 address %q, want one from %s", ip6, sub6)
	}
	get := `printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 3 %s 80`
	for _, target := range []string{ip6, "web6"} {
		script := fmt.Sprintf(get, target)
		if target == "web6" {
			script = "a=$(nslookup -type=AAAA web6 2>/dev/null | awk '/^Address/ && /:.*:/ {print $NF}' | tail -1); " + fmt.Sprintf(get, "$a")
		}
		eventually(t, 30*time.Second, "IPv6 to "+target, func() bool {
			out, _, _ := e.run(nil, "run", "--rm", "--network", "ds", "busybox", "sh", "-c", script)
			return strings.Contains(out, "hello-v6")
		})
	}
	// The published port answers on the host's own IPv6 address too.
	port := strings.TrimSpace(e.ok("inspect", "--format", `{{(index (index .NetworkSettings.Ports "80/tcp") 0).HostPort}}`, "web6"))
	if a := hostAddress6(); a != "" {
		url := "http://" + net.JoinHostPort(a, port) + "/"
		eventually(t, 30*time.Second, url, func() bool { return strings.Contains(fetch(url), "hello-v6") })
	} else {
		t.Log("the host has no global IPv6 address: published port over IPv6 not checked")
	}
}

// hostAddress6 is a global IPv6 address of the host's own (not a bridge's).
func hostAddress6() string {
	ifs, _ := net.Interfaces()
	for _, i := range ifs {
		if strings.HasPrefix(i.Name, "br-") || strings.HasPrefix(i.Name, "veth") || strings.HasPrefix(i.Name, "berth") || i.Flags&net.FlagUp == 0 {
			continue
		}
		addrs, _ := i.Addrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() == nil && n.IP.IsGlobalUnicast() {
				return n.IP.String()
			}
		}
	}
	return ""
}

// TestConnectHosts: `network connect` adds the running container's new
// address to its /etc/hosts under its hostname and `network disconnect`
// takes it out again, as Docker does; the rest of the file stays.
func TestConnectHosts(t *testing.T) {
	e := newEnv(t)
	e.ok("network", "create", "side")
	e.ok("run", "-d", "--name", "hc", "--hostname", "hc-host", "--add-host", "extra-name:10.1.2.3", "busybox", "sleep", "300")
	before := e.ok("exec", "hc", "cat", "/etc/hosts")
	e.ok("network", "connect", "side", "hc")
	ip := strings.TrimSpace(e.ok("inspect", "--format", `{{(index .NetworkSettings.Networks "side").IPAddress}}`, "hc"))
	if ip == "" {
		t.Fatal("no address on side")
	}
	hosts := e.ok("exec", "hc", "cat", "/etc/hosts")
	if !strings.Contains(hosts, ip+"\thc-host\n") {
		t.Fatalf("connect: want %s hc-host in /etc/hosts:\n%s", ip, hosts)
	}
	for _, l := range strings.Split(strings.TrimSpace(before), "\n") {
		if !strings.Contains(hosts, l+"\n") {
			t.Fatalf("connect lost %q:\n%s", l, hosts)
		}
	}
	// The new interface answers at that address inside the container.
	if out := e.ok("exec", "hc", "ip", "-o", "addr", "show", "eth1"); !strings.Contains(out, ip+"/") {
		t.Fatalf("eth1 lacks %s:\n%s", ip, out)
	}
	e.ok("network", "disconnect", "side", "hc")
	after := e.ok("exec", "hc", "cat", "/etc/hosts")
	if strings.Contains(after, ip) {
		t.Fatalf("disconnect left %s in /etc/hosts:\n%s", ip, after)
	}
	if after != before {
		t.Fatalf("after connect and disconnect /etc/hosts differs:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	e.ok("rm", "-f", "hc")
}
