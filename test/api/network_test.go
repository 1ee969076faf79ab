//go:build linux

package api_test

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// cliFunc runs one CLI (docker, or berth --host) against berthd and
// returns stdout, stderr and the exit code.
type cliFunc func(args ...string) (string, string, int)

// TestDockerCLINetworks drives the stock docker CLI's network commands
// against berthd, then what only dockerd's server-side filters give: type
// and dangling in ls, label! and until in prune.
func TestDockerCLINetworks(t *testing.T) {
	d, docker := dockerAgainstBerthd(t)
	cli := func(args ...string) (string, string, int) { return docker("", args...) }
	names := networkScenario(t, d, cli)

	ok := mustCLI(t, "docker", cli)
	ok("network", "create", "--label", "keep=1", names.keep)
	ok("network", "create", names.drop)
	ok("run", "-d", "--name", "holder", "--network", names.keep, "busybox", "sleep", "1000")

	// Dual stack: an IPv6 subnet beside the IPv4 one, static addresses of
	// both families on connect.
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	sub4 := netip.MustParsePrefix(fmt.Sprintf("10.%d.%d.0/24", 240+b[0]%10, b[1]))
	sub6 := netip.MustParsePrefix(fmt.Sprintf("fd%02x:%02x%02x::/64", b[2], b[3], b[4]))
	ip4, ip6 := sub4.Addr().As4(), sub6.Addr().As16()
	ip4[3], ip6[15] = 77, 0x77
	static4, static6 := netip.AddrFrom4(ip4).String(), netip.AddrFrom16(ip6).String()
	ok("network", "create", "--ipv6", "--subnet", sub4.String(), "--subnet", sub6.String(), names.dual)
	dual := ok("network", "inspect", "-f", "{{.EnableIPv6}} {{range .IPAM.Config}}{{.Subnet}} {{end}}", names.dual)
	if want := "true " + sub4.String() + " " + sub6.String(); strings.TrimSpace(dual) != want {
		t.Errorf("dual-stack network: %q, want %q", dual, want)
	}
	ok("network", "connect", "--ip", static4, "--ip6", static6, names.dual, "holder")
	got := ok("inspect", "-f", `{{with index .NetworkSettings.Networks "`+names.dual+`"}}{{.IPAddress}} {{.GlobalIPv6Address}}{{end}}`, "holder")
	if want := static4 + " " + static6; strings.TrimSpace(got) != want {
		t.Errorf("holder on %s: %q, want %q", names.dual, got, want)
	}
	lsNames := func(filter string) []string {
		return strings.Fields(ok("network", "ls", "--filter", filter, "--format", "{{.Name}}"))
	}
	for _, tc := range []struct {
		filter string
		want   []string
	}{
		{"type=custom", []string{names.drop, names.dual, names.keep}},
		{"type=builtin", []string{"bridge", "host", "none"}},
		{"dangling=true", []string{names.drop}},
		{"name=" + names.keep, []string{names.keep}},
		{"driver=null", []string{"none"}},
	} {
		if got := lsNames(tc.filter); strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("network ls --filter %s: %v, want %v", tc.filter, got, tc.want)
		}
	}
	if _, errOut, code := cli("network", "ls", "--filter", "type=nosuch"); code == 0 || !strings.Contains(errOut, "invalid filter") {
		t.Errorf("ls --filter type=nosuch: exit %d, %s", code, errOut)
	}
	// Networks made a moment ago are not older than an hour.
	if out := ok("network", "prune", "-f", "--filter", "until=1h"); strings.Contains(out, names.drop) {
		t.Errorf("prune --filter until=1h removed a new network:\n%s", out)
	}
	if out := ok("network", "prune", "-f", "--filter", "label!=keep"); !strings.Contains(out, names.drop) || strings.Contains(out, names.keep) {
		t.Errorf("prune --filter label!=keep:\n%s", out)
	}
	// holder is configured for keep even when stopped: keep is in use.
	ok("stop", "-t", "0", "holder")
	if out := ok("network", "prune", "-f"); strings.Contains(out, names.keep) || strings.Contains(out, names.dual) {
		t.Errorf("prune removed a network a stopped container is configured for:\n%s", out)
	}
	ok("rm", "holder")
	if out := ok("network", "prune", "-f"); !strings.Contains(out, "Deleted Networks:") || !strings.Contains(out, names.keep) {
		t.Errorf("prune after rm holder:\n%s", out)
	}
	if got := lsNames("type=custom"); len(got) != 0 {
		t.Errorf("user networks left after prune: %v", got)
	}
}

// TestBerthHostNetworks: the same network commands through `berth --host`.
func TestBerthHostNetworks(t *testing.T) {
	d := startDaemon(t)
	d.loadBusybox()
	cli := func(args ...string) (string, string, int) { return d.run(nil, args...) }
	names := networkScenario(t, d, cli)
	ok := mustCLI(t, "berth --host", cli)
	ok("network", "create", names.keep)
	if out := ok("network", "prune", "-f"); !strings.Contains(out, names.keep) {
		t.Errorf("prune: %s", out)
	}
	if out := ok("network", "ls", "--format", "{{.Name}}"); strings.Contains(out, names.keep) {
		t.Errorf("network ls after prune:\n%s", out)
	}
}

// TestNetworkAPIStatus checks the statuses dockerd answers with, which
// clients other than the CLI (compose, testcontainers) act on.
func TestNetworkAPIStatus(t *testing.T) {
	d := startDaemon(t)
	d.loadBusybox()
	req := func(method, path, body string) (int, string) {
		t.Helper()
		return d.request(t, method, "/v1.43"+path, body)
	}
	t.Cleanup(func() {
		d.run(nil, "rm", "-f", "st")
		d.run(nil, "network", "rm", "st1")
	})
	tests := []struct {
		name         string
		method, path string
		body         string
		code         int
		msg          string // substring of the reply
	}{
		{"create", "POST", "/networks/create", `{"Name":"st1","CheckDuplicate":true,"Labels":{"l":"v"}}`, 201, `"Id":`},
		{"duplicate", "POST", "/networks/create", `{"Name":"st1","CheckDuplicate":true}`, 409, "already exists"},
		{"unknown driver", "POST", "/networks/create", `{"Name":"st2","Driver":"nosuch"}`, 404, `plugin \"nosuch\" not found`},
		{"predefined", "POST", "/networks/create", `{"Name":"host"}`, 403, "pre-defined"},
		{"remove predefined", "DELETE", "/networks/none", "", 403, "pre-defined"},
		{"remove default", "DELETE", "/networks/bridge", "", 403, "pre-defined"},
		{"bad filter", "GET", "/networks?filters=" + `%7B%22nosuch%22%3A%7B%22x%22%3Atrue%7D%7D`, "", 400, "invalid filter"},
		{"label filter", "GET", "/networks?filters=" + `%7B%22label%22%3A%7B%22l%3Dv%22%3Atrue%7D%7D`, "", 200, `"Name":"st1"`},
		{"inspect unknown", "GET", "/networks/nosuchnet", "", 404, "not found"},
		{"remove unknown", "DELETE", "/networks/nosuchnet", "", 404, "not found"},
		{"run on st1", "POST", "/containers/create?name=st", `{"Image":"busybox","Cmd":["sleep","1000"],"HostConfig":{"NetworkMode":"st1"}}`, 201, `"Id"`},
		{"start", "POST", "/containers/st/start", "", 204, ""},
		{"remove in use", "DELETE", "/networks/st1", "", 403, "active endpoints"},
		{"connect again", "POST", "/networks/st1/connect", `{"Container":"st"}`, 403, "already exists"},
		{"connect unknown container", "POST", "/networks/st1/connect", `{"Container":"nosuch"}`, 404, ""},
		{"disconnect", "POST", "/networks/st1/disconnect", `{"Container":"st"}`, 200, ""},
		{"disconnect again", "POST", "/networks/st1/disconnect", `{"Container":"st"}`, 500, "not connected"},
		{"remove", "DELETE", "/networks/st1", "", 204, ""},
		{"prune", "POST", "/networks/prune", "", 200, `"NetworksDeleted":[]`},
	}
	for _, tc := range tests {
		code, body := req(tc.method, tc.path, tc.body)
		if code != tc.code || !strings.Contains(body, tc.msg) {
			t.Errorf("%s: %s %s: %d %s (want %d, %q)", tc.name, tc.method, tc.path, code, body, tc.code, tc.msg)
		}
	}
}

// scenarioNames are the networks a scenario leaves to its caller's checks.
type scenarioNames struct{ keep, drop, dual string }

// mustCLI returns a runner that fails the test when the command fails.
func mustCLI(t *testing.T, what string, cli cliFunc) func(args ...string) string {
	return func(args ...string) string {
		t.Helper()
		out, errOut, code := cli(args...)
		if code != 0 {
			t.Fatalf("%s %s: exit %d\nstdout: %s\nstderr: %s", what, strings.Join(args, " "), code, out, errOut)
		}
		return out
	}
}

// networkScenario is what docker and berth --host must both do against
// berthd: create with a subnet and a label, ls with its columns, filters
// and --format, inspect's JSON, two containers reaching each other by name
// on the network, connect with an alias and disconnect, rm refused while
// in use and then done, prune. The networks go away even when it fails.
func networkScenario(t *testing.T, d *daemon, cli cliFunc) scenarioNames {
	ok := mustCLI(t, "cli", cli)
	const net1, net2 = "apinet1", "apinet2"
	t.Cleanup(func() {
		for _, c := range []string{"srv", "holder"} {
			cli("rm", "-f", c)
		}
		for _, n := range []string{net1, net2, "apikeep", "apidrop", "apidual"} {
			cli("network", "rm", n)
		}
	})
	// A random /24 far from the 10.89.0.0/16-and-up range networks take
	// by default: other tests on this host make networks at the same time.
	b := make([]byte, 2)
	_, _ = rand.Read(b)
	subnet := netip.MustParsePrefix(fmt.Sprintf("10.%d.%d.0/24", 240+b[0]%10, b[1]))

	id := strings.TrimSpace(ok("network", "create", "--subnet", subnet.String(), "--label", "com.example.suite=api", net1))
	if len(id) != 64 {
		t.Fatalf("network create printed %q, want a 64-hex ID", id)
	}
	if _, errOut, code := cli("network", "create", net1); code == 0 || !strings.Contains(errOut, "already exists") {
		t.Errorf("second create of %s: exit %d, %s", net1, code, errOut)
	}
	if _, errOut, code := cli("network", "create", "-d", "nosuchdriver", "apix"); code == 0 || !strings.Contains(errOut, `plugin "nosuchdriver" not found`) {
		t.Errorf("create -d nosuchdriver: exit %d, %s", code, errOut)
	}

	lines := strings.Split(strings.TrimSpace(ok("network", "ls")), "\n")
	if h := strings.Fields(lines[0]); strings.Join(h, " ") != "NETWORK ID NAME DRIVER SCOPE" {
		t.Errorf("network ls header %q", lines[0])
	}
	var row string
	for _, l := range lines[1:] {
		if f := strings.Fields(l); len(f) > 1 && f[1] == net1 {
			row = strings.Join(f, " ")
		}
	}
	if want := id[:12] + " " + net1 + " bridge local"; row != want {
		t.Errorf("network ls row %q, want %q\n%s", row, want, strings.Join(lines, "\n"))
	}
	for _, tc := range []struct{ filter, want string }{
		{"label=com.example.suite=api", net1},
		{"label=com.example.suite", net1},
		{"name=apinet", net1},
		{"id=" + id[:10], net1},
		{"label=com.example.suite=other", ""},
	} {
		if got := strings.TrimSpace(ok("network", "ls", "--filter", tc.filter, "--format", "{{.Name}}")); got != tc.want {
			t.Errorf("network ls --filter %s: %q, want %q", tc.filter, got, tc.want)
		}
	}

	var nets []struct {
		Name, Scope, Driver  string
		ID                   string `json:"Id"`
		Created              time.Time
		EnableIPv6, Internal bool
		IPAM                 struct {
			Driver string
			Config []struct{ Subnet, Gateway, IPRange string }
		}
		Labels     map[string]string
		Containers map[string]struct{ Name, EndpointID, MacAddress, IPv4Address, IPv6Address string }
	}
	inspect := func(name string) {
		t.Helper()
		nets = nil
		if err := json.Unmarshal([]byte(ok("network", "inspect", name)), &nets); err != nil || len(nets) != 1 {
			t.Fatalf("network inspect %s: %v (%d networks)", name, err, len(nets))
		}
	}
	inspect(net1)
	n := nets[0]
	gw := subnet.Addr().Next().String()
	switch {
	case n.Name != net1, n.ID != id, n.Scope != "local", n.Driver != "bridge", n.EnableIPv6, n.Internal,
		time.Since(n.Created) > time.Hour, n.IPAM.Driver != "default", len(n.IPAM.Config) != 1,
		n.Labels["com.example.suite"] != "api", len(n.Containers) != 0:
		t.Errorf("network inspect %s: %+v", net1, n)
	}
	if len(n.IPAM.Config) == 1 && (n.IPAM.Config[0].Subnet != subnet.String() || n.IPAM.Config[0].Gateway != gw) {
		t.Errorf("IPAM config %+v, want subnet %s gateway %s", n.IPAM.Config[0], subnet, gw)
	}

	// srv answers every connection on port 5000 and logs what it got; a
	// second container finds it by name through the network's DNS.
	ok("run", "-d", "--name", "srv", "--network", net1, "busybox", "sh", "-c", "while :; do nc -l -p 5000; done")
	reach := func(net, host, word string) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			cli("run", "--rm", "--network", net, "busybox", "sh", "-c", "echo "+word+" | nc -w 2 "+host+" 5000")
			if logs, _, _ := cli("logs", "srv"); strings.Contains(logs, word) {
				return
			}
			if time.Now().After(deadline) {
				out, errOut, _ := cli("run", "--rm", "--network", net, "busybox", "nslookup", host)
				t.Fatalf("%s never reached srv as %s on %s; nslookup: %s%s\nberthd: %s", word, host, net, out, errOut, d.daemonLog())
			}
			time.Sleep(300 * time.Millisecond)
		}
	}
	reach(net1, "srv", "by-name")

	inspect(net1)
	if len(nets[0].Containers) != 1 {
		t.Fatalf("network inspect %s after run: containers %+v", net1, nets[0].Containers)
	}
	for cid, ep := range nets[0].Containers {
		p, err := netip.ParsePrefix(ep.IPv4Address)
		if len(cid) != 64 || ep.Name != "srv" || ep.EndpointID == "" || ep.MacAddress == "" || err != nil || !subnet.Contains(p.Addr()) {
			t.Errorf("endpoint %s: %+v (IPv4 in %s)", cid, ep, subnet)
		}
	}
	if _, errOut, code := cli("network", "rm", net1); code == 0 || !strings.Contains(errOut, "active endpoints") {
		t.Errorf("network rm of a network in use: exit %d, %s", code, errOut)
	}

	ok("network", "create", net2)
	inspect(net2)
	if len(nets[0].IPAM.Config) == 0 {
		t.Fatalf("%s has no IPAM config: %+v", net2, nets[0])
	}
	sub2, err := netip.ParsePrefix(nets[0].IPAM.Config[0].Subnet)
	if err != nil {
		t.Fatalf("%s's subnet: %v", net2, err)
	}
	static := sub2.Addr().As4()
	static[3] = 200
	ip2 := netip.AddrFrom4(static).String()
	ok("network", "connect", "--ip", ip2, "--alias", "srv-alias", net2, "srv")
	srvOn2 := func(field string) string {
		t.Helper()
		return strings.TrimSpace(ok("inspect", "-f", `{{json (index .NetworkSettings.Networks "`+net2+`").`+field+`}}`, "srv"))
	}
	if got := srvOn2("Aliases"); !strings.Contains(got, "srv-alias") {
		t.Errorf("srv's aliases on %s: %s", net2, got)
	}
	if got := srvOn2("IPAddress"); got != `"`+ip2+`"` {
		t.Errorf("srv's address on %s: %s, want %s (--ip)", net2, got, ip2)
	}
	reach(net2, "srv-alias", "by-alias")
	if _, errOut, code := cli("network", "connect", net2, "srv"); code == 0 || !strings.Contains(errOut, "already exists") {
		t.Errorf("second connect: exit %d, %s", code, errOut)
	}
	ok("network", "disconnect", net2, "srv")
	if got := ok("inspect", "-f", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}", "srv"); strings.TrimSpace(got) != net1 {
		t.Errorf("srv's networks after disconnect: %q, want %s", got, net1)
	}
	inspect(net2)
	if len(nets[0].Containers) != 0 {
		t.Errorf("%s after disconnect: containers %+v", net2, nets[0].Containers)
	}

	ok("rm", "-f", "srv")
	if out := strings.TrimSpace(ok("network", "rm", net1)); out != net1 {
		t.Errorf("network rm printed %q", out)
	}
	if _, errOut, code := cli("network", "inspect", net1); code == 0 || !strings.Contains(errOut, "not found") {
		t.Errorf("inspect after rm: exit %d, %s", code, errOut)
	}
	if out := ok("network", "prune", "-f"); !strings.Contains(out, net2) {
		t.Errorf("prune did not remove %s:\n%s", net2, out)
	}
	return scenarioNames{keep: "apikeep", drop: "apidrop", dual: "apidual"}
}
