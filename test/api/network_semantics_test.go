//go:build linux

package api_test

import (
	"encoding/json"
	"strings"
	"testing"

	nettypes "github.com/moby/moby/api/types/network"
)

// TestNetworkConnectSemantics checks berthd's answers to connect,
// disconnect and rm against dockerd's, status and words, as read from
// moby (daemon/container_operations.go, libnetwork) and observed on
// dockerd 20.10 with the same requests: a second endpoint on a network
// is Forbidden (403) for a running container and a no-op for a stopped
// one; disconnecting what is not connected is a 500 naming the full ID;
// host, none and namespace-sharing containers are invalid requests (400).
// It also checks that network inspect shows each endpoint's MAC address.
func TestNetworkConnectSemantics(t *testing.T) {
	d := startDaemon(t)
	d.loadBusybox()
	req := func(method, path, body string) (int, string) {
		t.Helper()
		return d.request(t, method, "/v1.43"+path, body)
	}
	t.Cleanup(func() {
		for _, c := range []string{"semrun", "semstop", "semnone", "semhost"} {
			d.run(nil, "rm", "-f", c)
		}
		d.run(nil, "network", "rm", "sem1", "sem2")
	})
	ok := func(args ...string) string {
		t.Helper()
		out, errOut, code := d.run(nil, args...)
		if code != 0 {
			t.Fatalf("berth %s: exit %d: %s", strings.Join(args, " "), code, errOut)
		}
		return strings.TrimSpace(out)
	}
	ok("network", "create", "sem1")
	ok("network", "create", "sem2")
	runID := ok("run", "-d", "--name", "semrun", "--network", "sem1", "busybox", "sleep", "1000")
	stopID := ok("create", "--name", "semstop", "--network", "sem1", "busybox", "sleep", "1000")
	ok("run", "-d", "--name", "semnone", "--network", "none", "busybox", "sleep", "1000")
	ok("run", "-d", "--name", "semhost", "--network", "host", "busybox", "sleep", "1000")

	tests := []struct {
		name         string
		method, path string
		body         string
		code         int
		msg          string // substring of the reply
	}{
		{"connect running again", "POST", "/networks/sem1/connect", `{"Container":"semrun"}`, 403, "endpoint with name semrun already exists in network sem1"},
		{"connect stopped again", "POST", "/networks/sem1/connect", `{"Container":"semstop"}`, 200, ""},
		{"disconnect running, not connected", "POST", "/networks/sem2/disconnect", `{"Container":"semrun"}`, 500, "container " + runID + " is not connected to network sem2"},
		{"disconnect stopped, not connected", "POST", "/networks/sem2/disconnect", `{"Container":"semstop"}`, 500, "container " + stopID + " is not connected to the network sem2"},
		{"disconnect forced, not connected", "POST", "/networks/sem2/disconnect", `{"Container":"semrun","Force":true}`, 500, "is not connected to network sem2"},
		{"connect to host", "POST", "/networks/host/connect", `{"Container":"semrun"}`, 400, "container cannot be disconnected from host network or connected to host network"},
		{"connect to none", "POST", "/networks/none/connect", `{"Container":"semrun"}`, 400, "private (none) mode"},
		{"connect a none container", "POST", "/networks/sem2/connect", `{"Container":"semnone"}`, 400, "private (none) mode"},
		{"connect a host container", "POST", "/networks/sem2/connect", `{"Container":"semhost"}`, 400, "container sharing network namespace with another container or host cannot be connected to any other network"},
		{"disconnect host from host", "POST", "/networks/host/disconnect", `{"Container":"semhost"}`, 400, "container cannot be disconnected from host network"},
		{"connect without container", "POST", "/networks/sem1/connect", `{}`, 400, `invalid name or ID supplied: \"\"`},
		{"connect unknown network", "POST", "/networks/nosuch/connect", `{"Container":"semrun"}`, 404, "not found"},
		{"connect unknown container", "POST", "/networks/sem1/connect", `{"Container":"nosuch"}`, 404, ""},
		{"remove in use", "DELETE", "/networks/sem1", "", 403, "has active endpoints"},
		{"prune bad filter", "POST", "/networks/prune?filters=" + `%7B%22nosuch%22%3A%7B%22x%22%3Atrue%7D%7D`, "", 400, "invalid filter 'nosuch'"},
		{"prune bad until", "POST", "/networks/prune?filters=" + `%7B%22until%22%3A%7B%22x%22%3Atrue%7D%7D`, "", 400, `failed to parse value as time or duration: \"x\"`},
		{"connect second network", "POST", "/networks/sem2/connect", `{"Container":"semrun"}`, 200, ""},
		{"disconnect it", "POST", "/networks/sem2/disconnect", `{"Container":"semrun"}`, 200, ""},
	}
	for _, tc := range tests {
		code, body := req(tc.method, tc.path, tc.body)
		if code != tc.code || !strings.Contains(body, tc.msg) {
			t.Errorf("%s: %s %s: %d %s (want %d, %q)", tc.name, tc.method, tc.path, code, body, tc.code, tc.msg)
		}
	}

	// The running container's endpoint has its MAC in network inspect,
	// the one the container's own inspect reports.
	code, body := req("GET", "/networks/sem1", "")
	if code != 200 {
		t.Fatalf("inspect sem1: %d %s", code, body)
	}
	var n nettypes.Inspect
	if err := json.Unmarshal([]byte(body), &n); err != nil {
		t.Fatalf("inspect sem1: %v: %s", err, body)
	}
	ep, found := n.Containers[runID]
	want := ok("inspect", "-f", `{{(index .NetworkSettings.Networks "sem1").MacAddress}}`, "semrun")
	if !found || want == "" || ep.MacAddress.String() != want {
		t.Errorf("endpoint of semrun on sem1: %+v (found %v), want MAC %q", ep, found, want)
	}
}
