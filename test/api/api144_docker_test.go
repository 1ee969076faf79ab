//go:build linux

package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDockerCLI144 drives berthd with the stock docker CLI at API 1.44:
// a container created on two networks is connected to both when it
// starts, --mac-address goes with --network, and read-only binds are
// recursively read-only unless --mount's bind-recursive says otherwise.
func TestDockerCLI144(t *testing.T) {
	d, docker := dockerAgainstBerthd(t)
	must := dockerMust(t, d, docker)
	if v := must("version", "--format", "{{.Server.APIVersion}} {{.Client.APIVersion}}"); v != "1.44 1.44" {
		t.Fatalf("negotiated versions (server client) = %q, want 1.44 1.44", v)
	}
	for _, n := range []string{"api144a", "api144b"} {
		must("network", "create", n)
		t.Cleanup(func() { docker("", "network", "rm", n) })
	}
	subnet := func(n string) string {
		s := must("network", "inspect", "-f", "{{(index .IPAM.Config 0).Subnet}}", n)
		return strings.TrimSuffix(s, "0/24")
	}
	a, b := subnet("api144a"), subnet("api144b")

	t.Run("two networks", func(t *testing.T) {
		must("create", "--name", "twonets", "--network", "api144a", "--network", "name=api144b,alias=bee,ip="+b+"77", "busybox", "sleep", "1000")
		t.Cleanup(func() { docker("", "rm", "-f", "twonets") })
		// At 1.44 dockerd appends the short ID to the Aliases of every
		// user-defined network (the hostname is the short ID too).
		short := must("inspect", "-f", "{{.Id}}", "twonets")[:12]
		if got, want := must("inspect", "-f", `{{range $k, $v := .NetworkSettings.Networks}}{{$k}}:{{json $v.Aliases}} {{end}}`, "twonets"), `api144a:["`+short+`"] api144b:["bee","`+short+`"]`; got != want {
			t.Errorf("created endpoints %q, want %q", got, want)
		}
		must("start", "twonets")
		addrs := must("exec", "twonets", "ip", "-o", "-4", "addr")
		if !strings.Contains(addrs, "eth0    inet "+a) || !strings.Contains(addrs, "eth1    inet "+b+"77/24") {
			t.Errorf("addresses:\n%s", addrs)
		}
		if got := must("inspect", "-f", `{{(index .NetworkSettings.Networks "api144b").IPAddress}}`, "twonets"); got != b+"77" {
			t.Errorf("inspect's api144b address %q", got)
		}
		// The default route is the first network's.
		if r := must("exec", "twonets", "ip", "route"); !strings.Contains(r, "default via "+a+"1 dev eth0") {
			t.Errorf("routes:\n%s", r)
		}
	})

	t.Run("mac address with network", func(t *testing.T) {
		const mac = "02:42:0a:5a:00:44"
		if got := must("run", "--rm", "--network", "api144a", "--mac-address", mac, "busybox", "cat", "/sys/class/net/eth0/address"); got != mac {
			t.Errorf("eth0's MAC %q, want %s", got, mac)
		}
	})

	t.Run("host mode takes no second network", func(t *testing.T) {
		_, errOut, code := docker("", "run", "--rm", "--network", "host", "--network", "api144a", "busybox", "true")
		if code != 125 || !strings.Contains(errOut, "conflicting options") {
			t.Errorf("exit %d: %s", code, errOut)
		}
	})

	host := submountDir(t)
	for _, tc := range []struct {
		name   string
		mount  []string
		script string
		want   []string // each in the output
	}{
		{"-v ro is recursively read-only", []string{"-v", host + ":/x:ro"},
			"touch /x/sub/new 2>&1; cat /x/sub/f", []string{"/x/sub/new: Read-only file system", "submount"}},
		{"bind-recursive=writable keeps the submount writable", []string{"--mount", "type=bind,src=" + host + ",dst=/x,readonly,bind-recursive=writable"},
			"touch /x/sub/new && echo wrote; touch /x/top 2>&1", []string{"wrote", "/x/top: Read-only file system"}},
		{"bind-recursive=disabled binds the top alone", []string{"--mount", "type=bind,src=" + host + ",dst=/x,readonly,bind-recursive=disabled"},
			"echo entries $(ls -A /x/sub | wc -l); touch /x/sub/new 2>&1", []string{"entries 0", "/x/sub/new: Read-only file system"}},
		{"bind-recursive=readonly", []string{"--mount", "type=bind,src=" + host + ",dst=/x,readonly,bind-recursive=readonly,bind-propagation=rprivate"},
			"touch /x/sub/new 2>&1; cat /x/sub/f", []string{"/x/sub/new: Read-only file system", "submount"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append(append([]string{"run", "--rm"}, tc.mount...), "busybox", "sh", "-c", tc.script)
			out, errOut, code := docker("", args...)
			// The scripts' last command may fail: the output tells.
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("exit %d, output %q, want %q in it; %s", code, out, w, errOut)
				}
			}
			_ = os.Remove(filepath.Join(host, "sub", "new"))
		})
	}
}

// TestCreateOlderClients checks that a client of API 1.43 keeps its
// version's create: read-only binds read-only at the top only, one
// network, no ReadOnlyForceRecursive.
func TestCreateOlderClients(t *testing.T) {
	d := startDaemon(t)
	d.loadBusybox()
	host := submountDir(t)
	post := func(version, name, body string) (int, string) {
		t.Helper()
		resp, err := d.http().Post("http://berth/v"+version+"/containers/create?name="+name, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	bind := `{"Image":"busybox","Cmd":["sh","-c","touch /x/sub/old && echo wrote"],"HostConfig":{"Binds":["` + host + `:/x:ro"]}}`
	if code, b := post("1.43", "oldro", bind); code != http.StatusCreated {
		t.Fatalf("create at 1.43: %d %s", code, b)
	}
	if out, errOut, code := d.run(nil, "start", "-a", "oldro"); code != 0 || strings.TrimSpace(out) != "wrote" {
		t.Errorf("1.43 read-only bind's submount: exit %d %q %s", code, out, errOut)
	}
	if code, b := post("1.44", "newro", bind); code != http.StatusCreated {
		t.Fatalf("create at 1.44: %d %s", code, b)
	}
	if out, _, code := d.run(nil, "start", "-a", "newro"); code == 0 || strings.Contains(out, "wrote") {
		t.Errorf("1.44 read-only bind's submount was writable: exit %d %q", code, out)
	}

	for _, tc := range []struct {
		name, version, body, want string
		status                    int
	}{
		{"two endpoints before 1.44", "1.43",
			`{"Image":"busybox","HostConfig":{"NetworkMode":"bridge"},"NetworkingConfig":{"EndpointsConfig":{"bridge":{},"other":{}}}}`,
			"Container cannot be created with multiple network endpoints: bridge, other", http.StatusBadRequest},
		{"force recursive before 1.44", "1.43",
			`{"Image":"busybox","HostConfig":{"Mounts":[{"Type":"bind","Source":"` + host + `","Target":"/x","ReadOnly":true,"BindOptions":{"ReadOnlyForceRecursive":true}}]}}`,
			"BindOptions.ReadOnlyForceRecursive needs API v1.44 or newer", http.StatusBadRequest},
		{"non-recursive without read-only", "1.44",
			`{"Image":"busybox","HostConfig":{"Mounts":[{"Type":"bind","Source":"` + host + `","Target":"/x","BindOptions":{"ReadOnlyNonRecursive":true}}]}}`,
			"mount options conflict: !ReadOnly && BindOptions.ReadOnlyNonRecursive", http.StatusBadRequest},
		{"host mode and another network", "1.44",
			`{"Image":"busybox","HostConfig":{"NetworkMode":"host"},"NetworkingConfig":{"EndpointsConfig":{"host":{},"bridge":{}}}}`,
			"container cannot be disconnected from host network or connected to host network", http.StatusBadRequest},
		{"missing second network", "1.44",
			`{"Image":"busybox","HostConfig":{"NetworkMode":"bridge"},"NetworkingConfig":{"EndpointsConfig":{"bridge":{},"api144-none":{}}}}`,
			"network api144-none not found", http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, b := post(tc.version, "", tc.body)
			var msg struct{ Message string }
			_ = json.Unmarshal([]byte(b), &msg)
			if code != tc.status || !strings.Contains(msg.Message, tc.want) {
				t.Errorf("%d %s, want %d %q", code, b, tc.status, tc.want)
			}
		})
	}
}

// submountDir is a host directory with a tmpfs mounted at sub/ holding
// sub/f, unmounted when the test ends.
func submountDir(t *testing.T) string {
	t.Helper()
	host := t.TempDir()
	sub := filepath.Join(host, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "api144-sub", sub).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", sub).Run() })
	if err := os.WriteFile(filepath.Join(sub, "f"), []byte("submount\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return host
}
