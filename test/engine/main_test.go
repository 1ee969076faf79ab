//go:build linux

// Package engine_test drives the berth CLI end to end, as a user would:
// every test gets its own --root and --state, and containers run the
// busybox fixture image through berth-monitor and berth-runtime.
package engine_test

import (
	"fmt"
	"io"
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
	berthBin   string
	busyboxTar string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if os.Geteuid() != 0 {
		// Each test skips with the reason through RequiresRoot.
		return m.Run()
	}
	f, cleanup, err := testutil.SetupCLI("berth-engine-e2e-")
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
	// command builds a berth command line's process; nil runs berthBin.
	command func(args ...string) *exec.Cmd
}

func newEnv(t *testing.T) *env {
	t.Helper()
	testutil.RequiresRoot(t)
	d := t.TempDir()
	e := &env{t: t, root: filepath.Join(d, "root"), state: filepath.Join(d, "state")}
	t.Cleanup(e.cleanup)
	e.ok("load", "-i", busyboxTar)
	out := e.ok("images", "-q")
	e.ok("tag", strings.TrimSpace(out), "busybox")
	return e
}

// cleanup removes every container (killing them, releasing mounts).
func (e *env) cleanup() {
	ids, _, _ := e.run(nil, "ps", "-aq", "--no-trunc")
	for _, id := range strings.Fields(ids) {
		e.run(nil, "rm", "-f", id)
	}
	// The instance's default bridge and any network a test made.
	if err := netclean.Remove(e.root, e.state); err != nil {
		e.t.Logf("cleanup: networks: %v", err)
	}
	// Whatever a failed test left mounted under the temp dir.
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			f := strings.Fields(l)
			if len(f) > 4 && strings.HasPrefix(f[4], filepath.Dir(e.root)) {
				exec.Command("umount", "-l", f[4]).Run()
			}
		}
	}
}

func (e *env) cmd(args ...string) *exec.Cmd {
	if e.command != nil {
		return e.command(args...)
	}
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
		time.Sleep(50 * time.Millisecond)
	}
}
