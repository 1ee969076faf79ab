//go:build linux

package engine_test

import (
	"strings"
	"testing"
	"time"
)

// TestRunSeveralNetworks: `berth run --network a --network b` (API 1.44's
// several endpoints at create) connects the container to both at start,
// the first as eth0 with the default route, each with its own settings;
// the endpoints survive a restart and the bad combinations are refused.
func TestRunSeveralNetworks(t *testing.T) {
	e := newEnv(t)
	e.ok("network", "create", "mnet-a")
	e.ok("network", "create", "mnet-b")
	subnet := func(n string) string {
		s := strings.TrimSpace(e.ok("network", "inspect", "-f", "{{(index .IPAM.Config 0).Subnet}}", n))
		return strings.TrimSuffix(s, "0/24")
	}
	a, b := subnet("mnet-a"), subnet("mnet-b")
	const mac = "02:42:0a:5b:00:09"

	e.ok("run", "-d", "--name", "multi", "--network", "mnet-a", "--mac-address", mac,
		"--network", "name=mnet-b,alias=bee,ip="+b+"50", "busybox", "sleep", "1000")
	check := func(when string) {
		t.Helper()
		addrs := e.ok("exec", "multi", "ip", "-o", "-4", "addr")
		if !strings.Contains(addrs, "eth0    inet "+a) || !strings.Contains(addrs, "eth1    inet "+b+"50/24") {
			t.Errorf("%s: addresses:\n%s", when, addrs)
		}
		if got := strings.TrimSpace(e.ok("exec", "multi", "cat", "/sys/class/net/eth0/address")); got != mac {
			t.Errorf("%s: eth0's MAC %q, want %s", when, got, mac)
		}
		if r := e.ok("exec", "multi", "ip", "route"); !strings.Contains(r, "default via "+a+"1 dev eth0") {
			t.Errorf("%s: routes:\n%s", when, r)
		}
		// Aliases depend on the API version (through berthd, API 1.44,
		// dockerd appends the short ID); DNSNames do not.
		short := strings.TrimSpace(e.ok("inspect", "-f", "{{.Id}}", "multi"))[:12]
		if got := strings.TrimSpace(e.ok("inspect", "-f", `{{json (index .NetworkSettings.Networks "mnet-b").Aliases}}`, "multi")); got != `["bee"]` && got != `["bee","`+short+`"]` {
			t.Errorf("%s: mnet-b aliases %s", when, got)
		}
		if got, want := strings.TrimSpace(e.ok("inspect", "-f", `{{json (index .NetworkSettings.Networks "mnet-b").DNSNames}}`, "multi")), `["multi","bee","`+short+`"]`; got != want {
			t.Errorf("%s: mnet-b DNSNames %s, want %s", when, got, want)
		}
	}
	check("first start")
	// The alias answers on mnet-b's DNS, from a container on mnet-b alone.
	var out string
	for i := 0; i < 50; i++ {
		out, _, _ = e.run(nil, "run", "--rm", "--network", "mnet-b", "busybox", "nslookup", "bee")
		if strings.Contains(out, "Address: "+b+"50") {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !strings.Contains(out, "Address: "+b+"50") {
		t.Errorf("nslookup bee on mnet-b:\n%s", out)
	}
	e.ok("restart", "-t", "0", "multi")
	check("after restart")

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"one network twice", []string{"--network", "mnet-a", "--network", "mnet-a"}, `network "mnet-a" is specified multiple times`},
		{"user-defined beside the bridge", []string{"--network", "bridge", "--network", "mnet-a"}, "cannot attach both user-defined and non-user-defined"},
		{"missing network", []string{"--network", "mnet-a", "--network", "mnet-none"}, "network mnet-none not found"},
		{"alias twice", []string{"--network", "name=mnet-a,alias=x", "--network-alias", "y"}, "cannot specify both --network-alias and per-network alias"},
		{"static address outside the subnet", []string{"--network", "mnet-a", "--network", "name=mnet-b,ip=192.0.2.5"}, "192.0.2.5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append(append([]string{"run", "--rm"}, tc.args...), "busybox", "true")
			_, errOut, code := e.run(nil, args...)
			if code != 125 || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d (want 125), stderr %q (want %q)", code, errOut, tc.want)
			}
		})
	}
	if out := e.ok("ps", "-aq"); len(strings.Fields(out)) != 1 {
		t.Errorf("refused runs left containers: %q", out)
	}
}
