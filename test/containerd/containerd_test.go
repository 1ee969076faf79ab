//go:build linux

package containerd

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
)

const imageName = "docker.io/berth-test/busybox:latest"

// TestContainerd runs containers through containerd's runc v2 shim with
// berth-runtime as the shim's "runc".
func TestContainerd(t *testing.T) {
	testutil.RequiresRoot(t)
	for _, bin := range []string{"containerd", "ctr", "containerd-shim-runc-v2"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s not found (apt-get install containerd, or make deps): %v", bin, err)
		}
	}
	rt, cleanupRT, err := testutil.RuntimeBinary()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cleanupRT)
	rootfs := busyboxRootfs(t)
	t.Logf("runtime: %s", rt)

	d := startDaemon(t, rt)
	archive := filepath.Join(d.dir, "busybox-oci.tar")
	if err := buildImageArchive(archive, rootfs, imageName, []string{"sh"}); err != nil {
		t.Fatal(err)
	}
	d.mustCtr(t, "images", "import", archive)
	if r := d.mustCtr(t, "images", "ls", "--quiet"); !strings.Contains(r.stdout, imageName) {
		t.Fatalf("imported image %s not listed:\n%s", imageName, r)
	}

	t.Run("RunRmExitCode", func(t *testing.T) {
		args := append([]string{"run", "--rm"}, d.runtimeFlags()...)
		args = append(args, imageName, "berth-rm", "sh", "-c", "echo hello-from-berth; exit 3")
		r, err := d.ctr(60*time.Second, args...)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(r.stdout, "hello-from-berth") {
			t.Errorf("stdout lacks hello-from-berth:\n%s", r)
		}
		if r.code != 3 {
			t.Errorf("exit code %d, want 3 (the container's):\n%s", r.code, r)
		}
		// --rm removed the container and its task.
		if r := d.mustCtr(t, "containers", "ls", "--quiet"); strings.Contains(r.stdout, "berth-rm") {
			t.Errorf("container berth-rm still listed after run --rm:\n%s", r)
		}
	})

	// A create that fails in the runtime must fail ctr, with the runtime's
	// error (which the shim reads from the --log file, --log-format json)
	// in the message.
	t.Run("CreateErrorReported", func(t *testing.T) {
		args := append([]string{"run", "--rm"}, d.runtimeFlags()...)
		args = append(args, imageName, "berth-noexec", "/no-such-binary")
		r, err := d.ctr(60*time.Second, args...)
		if err != nil {
			t.Fatal(err)
		}
		if r.code == 0 {
			t.Fatalf("run of a missing binary succeeded:\n%s", r)
		}
		if !strings.Contains(r.stderr, "no-such-binary") {
			t.Errorf("ctr's error does not name the missing binary (runtime error lost?):\n%s", r)
		}
		t.Logf("error as reported: %s", strings.TrimSpace(r.stderr))
		if r := d.mustCtr(t, "containers", "ls", "--quiet"); strings.Contains(r.stdout, "berth-noexec") {
			d.ctr(20*time.Second, "containers", "delete", "berth-noexec")
		}
	})

	t.Run("DetachedExecPsKillDelete", func(t *testing.T) {
		const id = "berth-detached"
		events := d.watchEvents(t)
		// PID 1 of a PID namespace gets only the signals it handles: the trap
		// makes SIGTERM observable as exit status 7. The loop's short sleeps let
		// the shell run the trap promptly.
		args := append([]string{"run", "--detach"}, d.runtimeFlags()...)
		args = append(args, imageName, id, "sh", "-c", "trap 'exit 7' TERM; while :; do sleep 0.1; done")
		d.mustCtr(t, args...)
		waitStatus(t, d, id, "RUNNING")

		r, err := d.ctr(60*time.Second, "task", "exec", "--exec-id", "e1", id,
			"sh", "-c", "echo exec-out; cat /proc/1/cmdline | tr '\\0' ' '; exit 5")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(r.stdout, "exec-out") || !strings.Contains(r.stdout, "while") {
			t.Errorf("exec stdout lacks exec-out and init's command line:\n%s", r)
		}
		if r.code != 5 {
			t.Errorf("exec exit code %d, want 5:\n%s", r.code, r)
		}

		r = d.mustCtr(t, "task", "ps", id)
		// Header line, then at least the init.
		if lines := strings.Split(strings.TrimSpace(r.stdout), "\n"); len(lines) < 2 {
			t.Errorf("task ps lists no process:\n%s", r)
		}

		d.mustCtr(t, "task", "pause", id)
		waitStatus(t, d, id, "PAUSED")
		d.mustCtr(t, "task", "resume", id)
		waitStatus(t, d, id, "RUNNING")

		d.mustCtr(t, "task", "kill", "--signal", "SIGTERM", id)
		waitStatus(t, d, id, "STOPPED")
		// ctr 1.6 prints no exit status anywhere but in the event stream.
		if got, ok := events.exitStatus(id, id, 10*time.Second); !ok {
			t.Errorf("no /tasks/exit event for %s; events:\n%s", id, events.text())
		} else if got != 7 {
			t.Errorf("init exit status %d, want 7 (from the TERM trap)", got)
		}
		d.mustCtr(t, "task", "delete", id)
		d.mustCtr(t, "containers", "delete", id)
		if r := d.mustCtr(t, "task", "ls", "--quiet"); strings.Contains(r.stdout, id) {
			t.Errorf("task %s still listed after delete:\n%s", id, r)
		}
		// The runtime's state for the container is gone too.
		if _, err := os.Stat(filepath.Join(d.runRoot, namespace, id)); !os.IsNotExist(err) {
			entries, _ := os.ReadDir(filepath.Join(d.runRoot, namespace))
			t.Errorf("runtime state for %s left behind in %s: %v", id, d.runRoot, entries)
		}
	})
}

// waitStatus polls `ctr task ls` until task id reports status (RUNNING,
// PAUSED, STOPPED, ...), failing t after 20s.
func waitStatus(t *testing.T, d *daemon, id, status string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var last result
	for time.Now().Before(deadline) {
		last = d.mustCtr(t, "task", "ls")
		for _, line := range strings.Split(last.stdout, "\n") {
			f := strings.Fields(line)
			if len(f) >= 3 && f[0] == id && f[2] == status {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("task %s not %s after 20s:\n%s", id, status, last)
}

// busyboxRootfs returns the busybox rootfs fixture, building it (idempotent,
// quick when present) with the fixture script, as `make fixtures` does.
func busyboxRootfs(t *testing.T) string {
	t.Helper()
	root, err := testutil.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	fixtures := os.Getenv("BERTH_FIXTURES")
	if fixtures == "" {
		fixtures = filepath.Join(root, ".cache", "fixtures")
	}
	rootfs := filepath.Join(fixtures, "busybox", "rootfs")
	if _, err := os.Stat(filepath.Join(rootfs, "bin", "sh")); err == nil {
		return rootfs
	}
	cmd := exec.Command(filepath.Join(root, "scripts", "fixtures", "busybox-rootfs.sh"), rootfs)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatal(fmt.Errorf("busybox-rootfs.sh: %w\n%s", err, out))
	}
	return rootfs
}
