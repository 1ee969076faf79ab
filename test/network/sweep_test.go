//go:build linux

package network_test

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// published is an instance with a user network and a container on it
// publishing a web server's port.
type published struct {
	e              *env
	net, bridge    string
	id, port, body string
}

func newPublished(t *testing.T, name string) *published {
	t.Helper()
	p := &published{e: newEnv(t), net: name, body: "hello-" + name}
	p.e.ok("network", "create", name)
	p.id = strings.TrimSpace(p.e.ok("run", "-d", "--network", name, "-p", "80", "--tmpfs", "/tmp", "busybox", "sh", "-c", webServer(p.body)))
	p.port = strings.TrimSpace(p.e.ok("inspect", "--format", `{{(index (index .NetworkSettings.Ports "80/tcp") 0).HostPort}}`, p.id))
	p.bridge = strings.TrimSpace(p.e.ok("network", "inspect", "-f", `{{index .Options "com.docker.network.bridge.name"}}`, name))
	if p.bridge == "" || p.port == "" {
		t.Fatalf("%s: bridge %q, port %q", name, p.bridge, p.port)
	}
	p.answers(t)
	return p
}

// answers waits for the published port to serve the container's page.
func (p *published) answers(t *testing.T) {
	t.Helper()
	url := "http://" + net.JoinHostPort("127.0.0.1", p.port) + "/"
	eventually(t, 30*time.Second, url, func() bool { return strings.Contains(fetch(url), p.body) })
}

// rules are the lines of iptables-save (both tables) that are p's: they
// name its bridge, its port chain or its container ID.
func (p *published) rules(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("iptables-save").Output()
	if err != nil {
		t.Fatalf("iptables-save: %v", err)
	}
	var own []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, " "+p.bridge+" ") || strings.HasSuffix(l, " "+p.bridge) ||
			strings.Contains(l, "BERTH-DN-"+p.id[:12]) || strings.Contains(l, p.id) {
			own = append(own, l)
		}
	}
	return own
}

// wantRules checks that p has its network's rules (forward, isolation,
// masquerade) and its port chain with the jump to it.
func (p *published) wantRules(t *testing.T) {
	t.Helper()
	got := strings.Join(p.rules(t), "\n")
	for _, want := range []string{
		"-A BERTH-FORWARD -i " + p.bridge + " -o " + p.bridge + " -j ACCEPT",
		"-A BERTH-ISOLATION-1 -i " + p.bridge + " ! -o " + p.bridge,
		"! -o " + p.bridge + " -j MASQUERADE",
		":BERTH-DN-" + p.id[:12],
		"-A BERTH-HOSTPORTS -m comment --comment \"berth:" + p.id + "\" -j BERTH-DN-" + p.id[:12],
	} {
		if !strings.Contains(got, want) {
			t.Errorf("%s: no rule %q among:\n%s", p.net, want, got)
		}
	}
}

// TestSweepStaleRules deletes the bridges of two live instances by hand,
// as an earlier session found them deleted, and checks that berth removes
// exactly their rules — forward, isolation, masquerade, the published
// port's DNAT chain, which would otherwise keep hijacking the port —
// while a third instance's network keeps all of its rules and its port.
// The first dead bridge is swept by the next berth command that opens a
// network store (its host-wide marker names a bridge that is gone); the
// second has no marker (as rules from a berth before markers) and is
// swept by `network prune`.
func TestSweepStaleRules(t *testing.T) {
	live := newPublished(t, "sweeplive")
	live.wantRules(t)
	marked := newPublished(t, "sweepmarked")
	unmarked := newPublished(t, "sweepunmarked")
	marked.wantRules(t)
	unmarked.wantRules(t)

	if out, err := exec.Command("ip", "link", "del", marked.bridge).CombinedOutput(); err != nil {
		t.Fatalf("ip link del %s: %v: %s", marked.bridge, err, out)
	}
	// Any command that opens the network store, in another instance.
	live.e.ok("network", "ls")
	if r := marked.rules(t); len(r) > 0 {
		t.Errorf("rules of %s (bridge deleted, marker kept) left after the next command:\n%s", marked.net, strings.Join(r, "\n"))
	}
	if _, err := os.Stat(filepath.Join("/run/berth-rules", "bridge."+marked.bridge)); !os.IsNotExist(err) {
		t.Errorf("marker of swept bridge %s: %v", marked.bridge, err)
	}
	unmarked.wantRules(t)
	unmarked.answers(t)

	if out, err := exec.Command("ip", "link", "del", unmarked.bridge).CombinedOutput(); err != nil {
		t.Fatalf("ip link del %s: %v: %s", unmarked.bridge, err, out)
	}
	if err := os.Remove(filepath.Join("/run/berth-rules", "bridge."+unmarked.bridge)); err != nil {
		t.Fatalf("marker of %s: %v", unmarked.bridge, err)
	}
	live.e.ok("network", "prune", "-f")
	if r := unmarked.rules(t); len(r) > 0 {
		t.Errorf("rules of %s left after prune:\n%s", unmarked.net, strings.Join(r, "\n"))
	}
	live.wantRules(t)
	live.answers(t)
	// The instances whose bridges went can still be cleaned up and used:
	// a new container makes the bridge and its rules again.
	marked.e.ok("rm", "-f", marked.id)
	marked.id = strings.TrimSpace(marked.e.ok("run", "-d", "--network", marked.net, "-p", "80", "--tmpfs", "/tmp", "busybox", "sh", "-c", webServer(marked.body)))
	marked.port = strings.TrimSpace(marked.e.ok("inspect", "--format", `{{(index (index .NetworkSettings.Ports "80/tcp") 0).HostPort}}`, marked.id))
	marked.wantRules(t)
	marked.answers(t)
}
