//go:build linux

// Package network_test drives berth's networking end to end through the
// CLI: real traffic between busybox containers on bridges that each test
// instance (its own --root/--state, so its own bridge names and subnets)
// creates and removes. Nothing leaves the machine: servers are containers
// or the host itself.
package network_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
)

var (
	berthBin   string
	busyboxTar string
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	if os.Geteuid() != 0 {
		return m.Run() // each test skips through RequiresRoot
	}
	f, cleanup, err := testutil.SetupCLI("berth-network-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer cleanup()
	berthBin, busyboxTar = f.Berth, f.BusyboxTar
	return m.Run()
}

// env is one isolated berth instance.
type env struct {
	t           *testing.T
	root, state string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	testutil.RequiresRoot(t)
	for _, p := range []string{"/usr/lib/cni/bridge", "/usr/sbin/iptables"} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("%s is missing: install containernetworking-plugins and iptables", p)
		}
	}
	d := t.TempDir()
	e := &env{t: t, root: filepath.Join(d, "root"), state: filepath.Join(d, "state")}
	// Until the network command and the run flags are wired into the CLI
	// (internal/cli/network.go provides them), there is nothing to test.
	if out, _, code := e.run(nil, "network", "ls", "-q"); code != 0 || strings.TrimSpace(out) == "" {
		t.Skip("this berth has no `network` command yet")
	}
	if out, _, _ := e.run(nil, "run", "--help"); !strings.Contains(out, "--network") {
		t.Skip("this berth's run has no --network flag yet")
	}
	t.Cleanup(e.cleanup)
	e.ok("load", "-i", busyboxTar)
	out := e.ok("images", "-q")
	e.ok("tag", strings.TrimSpace(out), "busybox")
	return e
}

// cleanup removes every container and network of the instance, then the
// default network's bridge and isolation rules, which `network rm` keeps.
func (e *env) cleanup() {
	ids, _, _ := e.run(nil, "ps", "-aq", "--no-trunc")
	for _, id := range strings.Fields(ids) {
		e.run(nil, "rm", "-f", id)
	}
	e.run(nil, "network", "prune", "-f")
	br, _, _ := e.run(nil, "network", "inspect", "bridge", "--format", `{{index .Options "com.docker.network.bridge.name"}}`)
	if br = strings.TrimSpace(br); br != "" && br != "berth0" {
		removeBridgeRules(br)
		_ = exec.Command("ip", "link", "del", br).Run()
	}
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			f := strings.Fields(l)
			if len(f) > 4 && strings.HasPrefix(f[4], filepath.Dir(e.root)) {
				_ = exec.Command("umount", "-l", f[4]).Run()
			}
		}
	}
}

// removeBridgeRules deletes the isolation rules naming bridge br.
func removeBridgeRules(br string) {
	for _, chain := range []string{"BERTH-ISOLATION-1", "BERTH-ISOLATION-2"} {
		out, _ := exec.Command("iptables", "-w", "-S", chain).Output()
		for _, l := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(l, "-A ") && strings.Contains(l, " "+br+" ") || strings.HasSuffix(l, " "+br) {
				args := append([]string{"-w", "-D"}, strings.Fields(l)[1:]...)
				_ = exec.Command("iptables", args...).Run()
			}
		}
	}
}

func (e *env) cmd(args ...string) *exec.Cmd {
	return exec.Command(berthBin, append([]string{"--root", e.root, "--state", e.state}, args...)...)
}

// run returns stdout, stderr and the exit code.
func (e *env) run(stdin io.Reader, args ...string) (string, string, int) {
	out, errOut, code, err := testutil.RunCmd(e.cmd(args...), stdin)
	if err != nil {
		e.t.Fatalf("berth %s: %v", strings.Join(args, " "), err)
	}
	return out, errOut, code
}

// ok runs a command that must succeed and returns its stdout.
func (e *env) ok(args ...string) string {
	e.t.Helper()
	out, errOut, code := e.run(nil, args...)
	if code != 0 {
		e.t.Fatalf("berth %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// eventually retries cond for up to d.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// httpGet is a shell command fetching http://host[:port]/ with busybox nc
// (Debian's busybox wget crashes on this kernel).
func httpGet(host, port string) string {
	return fmt.Sprintf(`printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 3 %s %s`, host, port)
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

// hostAddress is the host's own address on its default-route interface.
func hostAddress() string {
	c, err := net.Dial("udp", "192.0.2.1:9") // connect() on UDP sends nothing
	if err != nil {
		return ""
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).IP.String()
}

// webServer is a busybox httpd command serving body at /.
func webServer(body string) string {
	return "mkdir -p /tmp/w && echo " + body + " > /tmp/w/index.html && exec httpd -f -p 80 -h /tmp/w"
}
