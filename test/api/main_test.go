//go:build linux

// Package api_test drives berthd end to end: the Docker Engine API on its
// socket (raw HTTP, as curl or any client would), the berth CLI with
// --host, the stock docker CLI when installed, and test/engine's whole
// suite through berthd. Every test gets its own daemon, --root and --state.
package api_test

import (
	"context"
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
	"github.com/berth-dev/berth/internal/testutil/netclean"
)

var (
	binDir     string // berth, berthd, berth-runtime, berth-monitor, berth-init
	busyboxDir string // OCI layout of the busybox fixture
	busyboxTar string
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	if os.Geteuid() != 0 {
		return m.Run() // each test skips with the reason
	}
	root, err := testutil.ModuleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	dir, err := os.MkdirTemp("", "berth-api-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	binDir = filepath.Join(dir, "bin")
	for _, name := range []string{"berth", "berthd", "berth-runtime", "berth-monitor", "berth-init"} {
		if err := build(root, name, filepath.Join(binDir, name)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	img, err := testutil.BusyboxImage()
	if err != nil {
		fmt.Fprintln(os.Stderr, "busybox image:", err)
		return 1
	}
	busyboxDir = img.Dir
	busyboxTar = filepath.Join(dir, "busybox.tar")
	if err := testutil.TarDir(img.Dir, busyboxTar); err != nil {
		fmt.Fprintln(os.Stderr, "tar busybox layout:", err)
		return 1
	}
	return m.Run()
}

// build makes a static binary as the Makefile does; only berth-runtime is
// linked with the nsenter entry point.
func build(root, name, out string) error {
	if name == "berth-runtime" {
		return testutil.BuildStatic(root, "./cmd/"+name, out)
	}
	cmd := exec.Command("go", "build", "-trimpath", "-tags", "netgo osusergo", "-o", out, "./cmd/"+name)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/%s: %w\n%s", name, err, b)
	}
	return nil
}

// daemon is one berthd with its own store, state and socket.
type daemon struct {
	t                 *testing.T
	root, state, sock string
	cmd               *exec.Cmd
	logPath           string
}

// daemonLog is berthd's output so far, for failure messages.
func (d *daemon) daemonLog() string {
	b, _ := os.ReadFile(d.logPath)
	return string(b)
}

// startDaemon runs berthd for the test and stops it (after removing every
// container it made) when the test ends.
func startDaemon(t *testing.T) *daemon {
	t.Helper()
	testutil.RequiresRoot(t)
	d := t.TempDir()
	dm := &daemon{t: t, root: filepath.Join(d, "root"), state: filepath.Join(d, "state"), sock: filepath.Join(d, "api.sock"), logPath: filepath.Join(d, "berthd.log")}
	t.Cleanup(dm.cleanup)
	dm.start()
	return dm
}

func (d *daemon) host() string { return "unix://" + d.sock }

func (d *daemon) start() {
	d.t.Helper()
	d.cmd = exec.Command(filepath.Join(binDir, "berthd"), "--root", d.root, "--state", d.state, "--host", d.host(), "--group", "berth-test-no-such-group")
	logf, err := os.OpenFile(d.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		d.t.Fatal(err)
	}
	defer logf.Close()
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	if err := d.cmd.Start(); err != nil {
		d.t.Fatalf("start berthd: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.Dial("unix", d.sock); err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("berthd did not open %s\n%s", d.sock, d.daemonLog())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop ends berthd with SIGTERM and waits for it.
func (d *daemon) stop() {
	if d.cmd == nil || d.cmd.Process == nil {
		return
	}
	_ = d.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = d.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = d.cmd.Process.Kill()
		<-done
	}
	d.cmd = nil
}

func (d *daemon) cleanup() {
	if d.cmd != nil {
		ids, _, _ := d.run(nil, "ps", "-aq", "--no-trunc")
		for _, id := range strings.Fields(ids) {
			d.run(nil, "rm", "-f", id)
		}
		d.stop()
	}
	// Containers left by a failed test: remove them in process.
	out, _ := exec.Command(filepath.Join(binDir, "berth"), "--root", d.root, "--state", d.state, "ps", "-aq", "--no-trunc").Output()
	for _, id := range strings.Fields(string(out)) {
		_ = exec.Command(filepath.Join(binDir, "berth"), "--root", d.root, "--state", d.state, "rm", "-f", id).Run()
	}
	// The instance's default bridge and any network a test made.
	_ = netclean.Remove(d.root, d.state)
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			f := strings.Fields(l)
			if len(f) > 4 && strings.HasPrefix(f[4], filepath.Dir(d.root)) {
				_ = exec.Command("umount", "-l", f[4]).Run()
			}
		}
	}
}

// run runs `berth --host SOCK args…` and returns stdout, stderr and the
// exit code.
func (d *daemon) run(stdin io.Reader, args ...string) (string, string, int) {
	c := exec.Command(filepath.Join(binDir, "berth"), append([]string{"--host", d.host()}, args...)...)
	out, errOut, code, err := testutil.RunCmd(c, stdin)
	if err != nil {
		d.t.Fatalf("berth %s: %v", strings.Join(args, " "), err)
	}
	return out, errOut, code
}

// local runs the in-process `berth --root R --state S args…` on the
// daemon's own store (beside berthd, as a user may) and returns stdout,
// stderr and the exit code.
func (d *daemon) local(stdin io.Reader, args ...string) (string, string, int) {
	c := exec.Command(filepath.Join(binDir, "berth"), append([]string{"--root", d.root, "--state", d.state}, args...)...)
	out, errOut, code, err := testutil.RunCmd(c, stdin)
	if err != nil {
		d.t.Fatalf("berth %s: %v", strings.Join(args, " "), err)
	}
	return out, errOut, code
}

// ok runs a berth command that must succeed and returns its stdout.
func (d *daemon) ok(args ...string) string {
	d.t.Helper()
	out, errOut, code := d.run(nil, args...)
	if code != 0 {
		d.t.Fatalf("berth --host %s: exit %d\nstdout: %s\nstderr: %s\nberthd: %s", strings.Join(args, " "), code, out, errOut, d.daemonLog())
	}
	return out
}

// loadBusybox loads the fixture and names it busybox.
func (d *daemon) loadBusybox() {
	d.t.Helper()
	d.ok("load", "-i", busyboxTar)
	id := strings.TrimSpace(d.ok("images", "-q"))
	d.ok("tag", id, "busybox")
}

// http returns a client that speaks HTTP over the daemon's socket.
// request sends a JSON body (may be empty) to the API and returns the
// status and the response body.
func (d *daemon) request(t *testing.T, method, path, body string) (int, string) {
	t.Helper()
	r, err := http.NewRequest(method, "http://berth"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Content-Type", "application/json")
	resp, err := d.http().Do(r)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (d *daemon) http() *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dl net.Dialer
			return dl.DialContext(ctx, "unix", d.sock)
		},
	}}
}
