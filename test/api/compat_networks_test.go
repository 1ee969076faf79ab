//go:build linux

package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// TestCompatConnectMAC: POST /networks/{id}/connect with
// EndpointConfig.MacAddress (API 1.44; docker CLI 28 has no flag for it)
// gives a running container the interface at once and a stopped one at
// its next start, both with that address; a client before 1.44 had no
// such field, and a group address is refused as dockerd's kernel would.
func TestCompatConnectMAC(t *testing.T) {
	d, docker := dockerAgainstBerthd(t)
	must := dockerMust(t, d, docker)
	must("network", "create", "compatmac")
	t.Cleanup(func() { docker("", "network", "rm", "compatmac") })
	connect := func(version, ctr, body string) (int, string) {
		t.Helper()
		resp, err := d.http().Post("http://berth/v"+version+"/networks/compatmac/connect", "application/json",
			strings.NewReader(`{"Container":"`+ctr+`","EndpointConfig":`+body+`}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	inspectMAC := func(ctr string) string {
		return must("inspect", "-f", `{{(index .NetworkSettings.Networks "compatmac").MacAddress}}`, ctr)
	}

	t.Run("running", func(t *testing.T) {
		const mac = "02:42:ac:1e:00:a1"
		must("run", "-d", "--name", "macrun", "busybox", "sleep", "1000")
		if code, b := connect("1.44", "macrun", `{"MacAddress":"`+mac+`"}`); code != http.StatusOK {
			t.Fatalf("connect: %d %s", code, b)
		}
		if got := must("exec", "macrun", "cat", "/sys/class/net/eth1/address"); got != mac {
			t.Errorf("eth1's MAC %q, want %s", got, mac)
		}
		if got := inspectMAC("macrun"); got != mac {
			t.Errorf("inspect's MAC %q, want %s", got, mac)
		}
	})

	t.Run("stopped", func(t *testing.T) {
		const mac = "02:42:ac:1e:00:a2"
		must("create", "--name", "maccold", "busybox", "sleep", "1000")
		if code, b := connect("1.44", "maccold", `{"MacAddress":"`+mac+`","Aliases":["cold"]}`); code != http.StatusOK {
			t.Fatalf("connect: %d %s", code, b)
		}
		if got := inspectMAC("maccold"); got != mac {
			t.Errorf("inspect's configured MAC %q, want %s", got, mac)
		}
		must("start", "maccold")
		if got := must("exec", "maccold", "cat", "/sys/class/net/eth1/address"); got != mac {
			t.Errorf("eth1's MAC after start %q, want %s", got, mac)
		}
		// It is configuration: a restart keeps it.
		must("restart", "-t", "0", "maccold")
		if got := must("exec", "maccold", "cat", "/sys/class/net/eth1/address"); got != mac {
			t.Errorf("eth1's MAC after restart %q, want %s", got, mac)
		}
	})

	t.Run("before 1.44 ignored", func(t *testing.T) {
		const mac = "02:42:ac:1e:00:a3"
		must("run", "-d", "--name", "macold", "busybox", "sleep", "1000")
		if code, b := connect("1.43", "macold", `{"MacAddress":"`+mac+`"}`); code != http.StatusOK {
			t.Fatalf("connect: %d %s", code, b)
		}
		if got := must("exec", "macold", "cat", "/sys/class/net/eth1/address"); got == mac || got == "" {
			t.Errorf("eth1's MAC %q: a 1.43 client's MAC was applied", got)
		}
	})

	for _, tc := range []struct{ name, mac string }{
		{"multicast", "01:00:5e:00:00:01"},
		{"not ethernet", "02:00:5e:10:00:00:00:01"},
	} {
		t.Run("refused "+tc.name, func(t *testing.T) {
			must("create", "--name", "macbad-"+tc.name[:3], "busybox", "true")
			code, b := connect("1.44", "macbad-"+tc.name[:3], `{"MacAddress":"`+tc.mac+`"}`)
			if code != http.StatusBadRequest || !strings.Contains(b, "invalid MAC address") {
				t.Errorf("%d %s, want 400 invalid MAC address", code, b)
			}
			if got := must("inspect", "-f", `{{len .NetworkSettings.Networks}}`, "macbad-"+tc.name[:3]); got != "1" {
				t.Errorf("a refused connect left %s networks", got)
			}
		})
	}
}

// TestCompatPsNetworks: a container on several networks (created with
// two --network flags, or connected later) shows all of them in ps's
// Networks column and the list's NetworkSettings, running or not, as
// dockerd shows them; host and none show as themselves.
func TestCompatPsNetworks(t *testing.T) {
	d, docker := dockerAgainstBerthd(t)
	must := dockerMust(t, d, docker)
	for _, n := range []string{"psneta", "psnetb"} {
		must("network", "create", n)
		t.Cleanup(func() { docker("", "network", "rm", n) })
	}
	must("create", "--name", "pstwo", "--network", "psneta", "--network", "psnetb", "busybox", "sleep", "1000")
	must("run", "-d", "--name", "psconn", "busybox", "sleep", "1000")
	must("network", "connect", "psnetb", "psconn")
	must("create", "--name", "pshost", "--network", "host", "busybox", "true")
	must("create", "--name", "psnone", "--network", "none", "busybox", "true")

	// The docker CLI joins the map's keys in map order: compare sorted.
	psNets := func(name string) string {
		nets := strings.Split(must("ps", "-a", "--filter", "name=^"+name+"$", "--format", "{{.Networks}}"), ",")
		slices.Sort(nets)
		return strings.Join(nets, ",")
	}
	want := map[string]string{"pstwo": "psneta,psnetb", "psconn": "bridge,psnetb", "pshost": "host", "psnone": "none"}
	check := func(stage string) {
		t.Helper()
		for name, w := range want {
			if got := psNets(name); got != w {
				t.Errorf("%s: ps Networks of %s = %q, want %q", stage, name, got, w)
			}
			got := must("inspect", "-f", `{{range $k, $v := .NetworkSettings.Networks}}{{$k}},{{end}}`, name)
			if got = strings.TrimSuffix(got, ","); got != w {
				t.Errorf("%s: inspect's networks of %s = %q, want %q", stage, name, got, w)
			}
		}
	}
	check("created")
	must("start", "pstwo")
	check("running")

	// The list's endpoints carry what inspect's do: the running
	// container's address on each network.
	code, body := compatGet(t, d, "/v1.44/containers/json?filters="+`%7B%22name%22%3A%7B%22pstwo%22%3Atrue%7D%7D`)
	var list []struct {
		NetworkSettings struct {
			Networks map[string]struct{ IPAddress, NetworkID, MacAddress string }
		}
	}
	if err := json.Unmarshal([]byte(body), &list); code != http.StatusOK || err != nil || len(list) != 1 {
		t.Fatalf("list: %d %s (%v)", code, body, err)
	}
	var names []string
	for n, ep := range list[0].NetworkSettings.Networks {
		names = append(names, n)
		if ep.IPAddress == "" || ep.NetworkID == "" || ep.MacAddress == "" {
			t.Errorf("list's endpoint on %s: %+v", n, ep)
		}
		if ip := must("inspect", "-f", `{{(index .NetworkSettings.Networks "`+n+`").IPAddress}}`, "pstwo"); ip != ep.IPAddress {
			t.Errorf("list's address on %s %q, inspect's %q", n, ep.IPAddress, ip)
		}
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"psneta", "psnetb"}) {
		t.Errorf("list's networks %v", names)
	}

	must("network", "disconnect", "psneta", "pstwo")
	want["pstwo"] = "psnetb"
	check("disconnected")
}
