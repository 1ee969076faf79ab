//go:build linux

package engine_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// mountsUnder lists the mount points at or below dir.
func mountsUnder(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			out = append(out, f[4])
		}
	}
	return out
}

// TestExitCleansUp: the monitor releases what a container held when it
// exits — the rootfs mount of any exited container, and the whole
// container with --rm, also when nobody is attached (run -d --rm).
func TestExitCleansUp(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name     string
		args     []string
		removed  bool   // the container disappears by itself
		waitCode string // `berth wait` right after the start prints this
	}{
		{name: "detached", args: []string{"run", "-d", "busybox", "sh", "-c", "sleep 0.3"}},
		{name: "detached rm", args: []string{"run", "-d", "--rm", "busybox", "sh", "-c", "sleep 0.3"}, removed: true},
		// `wait` must reach the container before it exits and goes, and
		// nothing marks the moment it has: the container lives 2 s (it was
		// 0.5 s, which a loaded machine can spend between run -d and wait).
		{name: "detached rm exit code", args: []string{"run", "-d", "--rm", "busybox", "sh", "-c", "sleep 2; exit 3"}, removed: true, waitCode: "3"},
		{name: "attached rm", args: []string{"run", "--rm", "busybox", "true"}, removed: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := e.ok(tc.args...)
			id := strings.TrimSpace(out)
			if strings.Contains(strings.Join(tc.args, " "), " -d ") {
				if len(id) != 64 {
					t.Fatalf("run -d printed %q, want a container ID", out)
				}
			}
			if tc.waitCode != "" {
				// wait sees the exit code before the container goes.
				if code := strings.TrimSpace(e.ok("wait", id)); code != tc.waitCode {
					t.Errorf("wait printed %q, want %q", code, tc.waitCode)
				}
			}
			if tc.removed {
				eventually(t, 10*time.Second, "the --rm container to remove itself", func() bool {
					ps := e.ok("ps", "-aq", "--no-trunc")
					return id == "" && strings.TrimSpace(ps) == "" || id != "" && !strings.Contains(ps, id)
				})
				if id != "" {
					if _, err := os.Stat(filepath.Join(e.state, "containers", id)); !os.IsNotExist(err) {
						t.Errorf("bundle of a removed container left behind: %v", err)
					}
				}
			} else {
				eventually(t, 10*time.Second, "the container to exit", func() bool {
					return strings.TrimSpace(e.ok("inspect", "--format", "{{.State.Status}}", id)) == "exited"
				})
				// No `berth` command ran since the exit: the monitor
				// unmounted the rootfs itself.
				rootfs := filepath.Join(e.state, "containers", id, "rootfs")
				eventually(t, 5*time.Second, "the rootfs mount to go", func() bool { return len(mountsUnder(t, rootfs)) == 0 })
				// And the container still starts again (the engine mounts it anew).
				e.ok("start", id)
				if code := strings.TrimSpace(e.ok("wait", id)); code != "0" {
					t.Errorf("second run exited %s, want 0", code)
				}
				e.ok("rm", id)
			}
			if m := mountsUnder(t, e.state); len(m) != 0 {
				t.Errorf("mounts left under the state directory: %v", m)
			}
		})
	}
}

// TestRunRmCLIKilled: an attached `run --rm` killed with SIGKILL leaves the
// removal to the container's monitor (its lock on the --rm claim goes with
// the process).
func TestRunRmCLIKilled(t *testing.T) {
	e := newEnv(t)
	cmd := e.cmd("run", "--rm", "--name", "orphan", "busybox", "sleep", "1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the container to run", func() bool {
		out, _, _ := e.run(nil, "inspect", "--format", "{{.State.Status}}", "orphan")
		return strings.TrimSpace(out) == "running"
	})
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	eventually(t, 10*time.Second, "the monitor to remove the container", func() bool {
		return strings.TrimSpace(e.ok("ps", "-aq")) == ""
	})
	if m := mountsUnder(t, e.state); len(m) != 0 {
		t.Errorf("mounts left under the state directory: %v", m)
	}
}
