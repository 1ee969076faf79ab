//go:build linux

package network_test

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestEndpointSettings: `run --network N --network-alias A --ip X
// --mac-address M` gives the container that address and MAC and makes it
// resolvable by the alias, as Docker does; inspect shows the settings
// under NetworkSettings.Networks[N] and no berth label carries them.
func TestEndpointSettings(t *testing.T) {
	e := newEnv(t)
	e.ok("network", "create", "epnet")
	defer e.run(nil, "network", "rm", "epnet")
	subnet := strings.TrimSpace(e.ok("network", "inspect", "--format", "{{(index .IPAM.Config 0).Subnet}}", "epnet"))
	pfx, err := netip.ParsePrefix(subnet)
	if err != nil || !pfx.Addr().Is4() {
		t.Fatalf("epnet's subnet %q: %v", subnet, err)
	}
	// .77 of the subnet: IPAM hands out addresses from the bottom, and
	// this network is new.
	a4 := pfx.Masked().Addr().As4()
	a4[3] += 77
	ip := netip.AddrFrom4(a4).String()
	const mac = "02:42:ac:11:77:77"
	e.ok("run", "-d", "--name", "ep", "--network", "epnet", "--network-alias", "epalias", "--ip", ip, "--mac-address", mac,
		"--tmpfs", "/tmp", "busybox", "sh", "-c", webServer("hello-endpoint"))
	defer e.run(nil, "rm", "-f", "ep")

	if got := e.ipOf("ep"); got != ip {
		t.Fatalf("ep has address %s, want %s", got, ip)
	}
	inside := e.ok("exec", "ep", "cat", "/sys/class/net/eth0/address")
	if strings.TrimSpace(inside) != mac {
		t.Fatalf("eth0's MAC is %q, want %s", inside, mac)
	}
	eventually(t, 20*time.Second, "resolve epalias", func() bool {
		out, _, _ := e.run(nil, "run", "--rm", "--network", "epnet", "busybox", "sh", "-c", "nslookup epalias; "+httpGet("epalias", "80"))
		return strings.Contains(out, "Address: "+ip) && strings.Contains(out, "hello-endpoint")
	})

	for _, tc := range []struct{ format, want string }{
		{`{{json (index .NetworkSettings.Networks "epnet").Aliases}}`, `["epalias"]`},
		{`{{(index .NetworkSettings.Networks "epnet").IPAMConfig.IPv4Address}}`, ip},
		{`{{(index .NetworkSettings.Networks "epnet").MacAddress}}`, mac},
	} {
		if got := strings.TrimSpace(e.ok("inspect", "--format", tc.format, "ep")); got != tc.want {
			t.Errorf("inspect %s = %s, want %s", tc.format, got, tc.want)
		}
	}
	if labels := e.ok("inspect", "--format", "{{json .Config.Labels}}", "ep"); strings.Contains(labels, "berth.network") {
		t.Errorf("endpoint settings show as labels: %s", labels)
	}
	// A created, never started container shows its configured settings too.
	e.ok("create", "--name", "epcreated", "--network", "epnet", "--network-alias", "other", "busybox", "true")
	defer e.run(nil, "rm", "-f", "epcreated")
	if got := strings.TrimSpace(e.ok("inspect", "--format", `{{json (index .NetworkSettings.Networks "epnet").Aliases}}`, "epcreated")); got != `["other"]` {
		t.Errorf("created container's aliases: %s", got)
	}

	// The engine refuses what dockerd refuses, with its words.
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"ip on the default bridge", []string{"--ip", ip}, "user specified IP address is supported on user defined networks only"},
		{"ipv6 address as --ip", []string{"--network", "epnet", "--ip", "fd00::1"}, "invalid IPv4 address"},
		{"mac with host networking", []string{"--network", "host", "--mac-address", mac}, "conflicting options: mac-address and the network mode"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append(append([]string{"create"}, tc.args...), "busybox", "true")
			_, stderr, code := e.run(nil, args...)
			if code != 125 || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want 125 and %q", code, stderr, tc.want)
			}
		})
	}
}
