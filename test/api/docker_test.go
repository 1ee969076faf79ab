//go:build linux

package api_test

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDockerCLI points the stock docker CLI (Debian's docker.io, or any
// docker on PATH) at berthd: version negotiation, ps, images, run with
// its exit code and streams, exec, logs, inspect, rm.
func TestDockerCLI(t *testing.T) {
	d, docker := dockerAgainstBerthd(t)
	buildCtx := t.TempDir()
	if err := os.WriteFile(filepath.Join(buildCtx, "Dockerfile"), []byte("FROM busybox\nRUN echo built > /b\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		stdin  string
		args   []string
		code   int
		stdout string // substring
	}{
		{"version", "", []string{"version", "--format", "{{.Server.APIVersion}} {{.Server.MinAPIVersion}}"}, 0, "1.44 1.24"},
		{"images", "", []string{"images", "--format", "{{.Repository}}:{{.Tag}}"}, 0, "busybox:latest"},
		{"run", "", []string{"run", "--rm", "busybox", "echo", "from docker"}, 0, "from docker\n"},
		{"run exit code", "", []string{"run", "--rm", "busybox", "sh", "-c", "echo o; exit 5"}, 5, "o\n"},
		{"run not found", "", []string{"run", "--rm", "busybox", "nosuchcmd"}, 127, ""},
		{"run stdin", "piped\n", []string{"run", "-i", "--rm", "busybox", "cat"}, 0, "piped\n"},
		{"run detached", "", []string{"run", "-d", "--name", "bg", "busybox", "sh", "-c", "echo bg; exec sleep 1000"}, 0, ""},
		{"ps", "", []string{"ps", "--format", "{{.Names}} {{.Image}}"}, 0, "bg busybox"},
		{"exec", "", []string{"exec", "bg", "sh", "-c", "echo e; exit 2"}, 2, "e\n"},
		{"inspect", "", []string{"inspect", "-f", "{{.State.Running}}", "bg"}, 0, "true"},
		{"logs", "", []string{"logs", "bg"}, 0, "bg\n"},
		{"rm", "", []string{"rm", "-f", "bg"}, 0, "bg"},
		{"build", "", []string{"build", "-t", "dbuilt", buildCtx}, 0, "Successfully tagged dbuilt"},
		{"run built", "", []string{"run", "--rm", "dbuilt", "cat", "/b"}, 0, "built\n"},
		{"rm missing", "", []string{"rm", "bg"}, 1, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := docker(tc.stdin, tc.args...)
			if code != tc.code || !strings.Contains(out, tc.stdout) {
				t.Errorf("docker %v: exit %d (want %d), stdout %q (want %q)\nstderr: %s", tc.args, code, tc.code, out, tc.stdout, errOut)
			}
		})
	}
	if out := d.ok("ps", "-aq"); out != "" {
		t.Errorf("docker run --rm left containers: %q", out)
	}
}

// dockerAgainstBerthd starts berthd with busybox loaded and returns a
// function that runs the stock docker CLI against it (stdout, stderr,
// exit code); it skips when there is no docker CLI.
// dockerMust wraps docker (from dockerAgainstBerthd): the command must
// succeed (the test fails with its output and berthd's log otherwise); it
// returns the trimmed stdout.
func dockerMust(t *testing.T, d *daemon, docker func(stdin string, args ...string) (string, string, int)) func(args ...string) string {
	return func(args ...string) string {
		t.Helper()
		out, errOut, code := docker("", args...)
		if code != 0 {
			t.Fatalf("docker %s: exit %d: %s%s\nberthd: %s", strings.Join(args, " "), code, out, errOut, d.daemonLog())
		}
		return strings.TrimSpace(out)
	}
}

func dockerAgainstBerthd(t *testing.T) (*daemon, func(stdin string, args ...string) (string, string, int)) {
	dockerBin, err := exec.LookPath("docker")
	if err != nil {
		t.Skip("no docker CLI on PATH")
	}
	d := startDaemon(t)
	d.loadBusybox()
	return d, func(stdin string, args ...string) (string, string, int) {
		c := exec.Command(dockerBin, args...)
		c.Env = append(os.Environ(), "DOCKER_HOST="+d.host(), "DOCKER_CONFIG="+t.TempDir())
		if stdin != "" {
			c.Stdin = strings.NewReader(stdin)
		}
		var out, errb bytes.Buffer
		c.Stdout, c.Stderr = &out, &errb
		err := c.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("docker %v: %v", args, err)
		}
		return out.String(), errb.String(), code
	}
}

// TestDockerCLIEndpointSettings: `docker run --network N --network-alias
// A --hostname H` against berthd keeps the endpoint settings the docker
// CLI sends (NetworkingConfig): inspect shows no label, and at the API
// version the CLI negotiates (1.44) Aliases are dockerd's — the alias,
// the short ID, the hostname — and DNSNames adds the name first; every
// one of them resolves on the network.
// A client of API 1.43 that sends --mac-address as the body's MacAddress
// (older docker CLIs; this one refuses it below 1.44) has it on eth0.
func TestDockerCLIEndpointSettings(t *testing.T) {
	d, docker := dockerAgainstBerthd(t)
	if out, errOut, code := docker("", "network", "create", "dnet"); code != 0 {
		t.Fatalf("docker network create: exit %d: %s%s", code, out, errOut)
	}
	t.Cleanup(func() {
		docker("", "rm", "-f", "aliased")
		docker("", "network", "rm", "dnet")
	})
	if out, errOut, code := docker("", "run", "-d", "--name", "aliased", "--network", "dnet", "--network-alias", "dalias", "--hostname", "ahost", "busybox", "sleep", "1000"); code != 0 {
		t.Fatalf("docker run: exit %d: %s%s", code, out, errOut)
	}
	inspect := func(format string) string {
		t.Helper()
		out, errOut, code := docker("", "inspect", "-f", format, "aliased")
		if code != 0 {
			t.Fatalf("docker inspect %s: exit %d: %s", format, code, errOut)
		}
		return strings.TrimSpace(out)
	}
	ip := inspect(`{{(index .NetworkSettings.Networks "dnet").IPAddress}}`)
	if ip == "" {
		t.Fatal("aliased has no address on dnet")
	}
	short := inspect("{{.Id}}")[:12]
	if got, want := inspect(`{{json (index .NetworkSettings.Networks "dnet").Aliases}}`), `["dalias","`+short+`","ahost"]`; got != want {
		t.Errorf("aliases %s, want %s", got, want)
	}
	if got, want := inspect(`{{json (index .NetworkSettings.Networks "dnet").DNSNames}}`), `["aliased","dalias","`+short+`","ahost"]`; got != want {
		t.Errorf("DNSNames %s, want %s", got, want)
	}
	if labels := inspect("{{json .Config.Labels}}"); strings.Contains(labels, "berth.network") {
		t.Errorf("endpoint settings show as labels: %s", labels)
	}
	const mac = "02:42:ac:11:55:55"
	body := `{"Image":"busybox","Cmd":["cat","/sys/class/net/eth0/address"],"MacAddress":"` + mac + `"}`
	resp, err := d.http().Post("http://berth/v1.43/containers/create?name=oldmac", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create with MacAddress: %s: %s", resp.Status, b)
	}
	t.Cleanup(func() { docker("", "rm", "-f", "oldmac") })
	if out, errOut, code := docker("", "start", "-a", "oldmac"); code != 0 || strings.TrimSpace(out) != mac {
		t.Errorf("eth0's MAC: exit %d, %q (want %s) %s", code, out, mac, errOut)
	}
	// The network's DNS server may take a moment to answer after start.
	for _, name := range []string{"dalias", short, "ahost", "aliased"} {
		var out, errOut string
		for i := 0; i < 50; i++ {
			out, errOut, _ = docker("", "run", "--rm", "--network", "dnet", "busybox", "nslookup", name)
			if strings.Contains(out, "Address: "+ip) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if !strings.Contains(out, "Address: "+ip) {
			t.Errorf("nslookup %s: want %s in:\n%s%s", name, ip, out, errOut)
		}
	}
	// dockerd's refusal, with its words, reaches the docker CLI.
	_, errOut, code := docker("", "run", "--rm", "--ip", "10.88.0.99", "busybox", "true")
	if code != 125 || !strings.Contains(errOut, "user specified IP address is supported on user defined networks only") {
		t.Errorf("--ip on the default bridge: exit %d, %s", code, errOut)
	}
}
