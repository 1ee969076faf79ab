//go:build linux

package engine_test

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
)

// crunEnv is an env whose engine runs containers with crun through the
// OCI command-line contract, every command inside one mount namespace
// where crun accepts the cgroup layout.
type crunEnv struct {
	*env
	berth  string // a berth whose sibling berth-runtime is crun
	holder *exec.Cmd
	crun   string
}

// newCrunEnv prepares a crunEnv. The engine finds its runtime beside its
// own executable, so a copy of berth (with berth-monitor and berth-init)
// in a directory where berth-runtime is crun runs every container with
// crun — the path `--runtime crun` selects.
//
// crun 1.8 refuses the hybrid cgroup layout of hosts that mount cgroup2
// at /sys/fs/cgroup/unified beside the v1 controllers. A holder process
// keeps a private mount namespace where that mount is gone (as the
// runtime-startup bench does), and each command enters it with nsenter:
// the containers' rootfs mounts and crun's cgroups then see one layout,
// and everything mounted in there goes when the namespace does.
func newCrunEnv(t *testing.T) *crunEnv {
	t.Helper()
	testutil.RequiresRoot(t)
	crun, err := exec.LookPath("crun")
	if err != nil {
		t.Skip("crun is not installed")
	}
	for _, tool := range []string{"unshare", "nsenter"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s (util-linux) is not installed", tool)
		}
	}
	e := newEnv(t)
	dir := t.TempDir()
	for _, name := range []string{"berth", "berth-monitor", "berth-init"} {
		if err := linkOrCopy(filepath.Join(filepath.Dir(berthBin), name), filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(crun, filepath.Join(dir, "berth-runtime")); err != nil {
		t.Fatal(err)
	}
	holder := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c",
		`if mountpoint -q /sys/fs/cgroup/unified; then umount /sys/fs/cgroup/unified || exit 1; fi; echo ready; exec sleep 3600`)
	// If the test binary dies, so does the namespace (and its mounts).
	holder.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.Start(); err != nil {
		t.Fatalf("start namespace holder: %v", err)
	}
	ce := &crunEnv{env: e, berth: filepath.Join(dir, "berth"), holder: holder, crun: crun}
	e.command = ce.cmd // run and ok go through the namespace
	// Registered after newEnv's cleanup, so it runs first: containers
	// crun made are removed through crun, in the namespace, before the
	// namespace goes.
	t.Cleanup(ce.cleanup)
	line := make([]byte, len("ready\n"))
	if _, err := io.ReadFull(out, line); err != nil || string(line) != "ready\n" {
		t.Fatalf("namespace holder: %q, %v", line, err)
	}
	return ce
}

func (c *crunEnv) cleanup() {
	ids, _, _ := c.run(nil, "ps", "-aq", "--no-trunc")
	for _, id := range strings.Fields(ids) {
		c.run(nil, "rm", "-f", id)
	}
	_ = c.holder.Process.Signal(syscall.SIGKILL)
	_ = c.holder.Wait()
	c.command = nil // env's own cleanup runs after this one, outside
}

// cmd runs c.berth in the holder's mount namespace.
func (c *crunEnv) cmd(args ...string) *exec.Cmd {
	nsArgs := []string{"-t", fmt.Sprint(c.holder.Process.Pid), "-m", "--", c.berth, "--root", c.root, "--state", c.state}
	return exec.Command("nsenter", append(nsArgs, args...)...)
}

// TestCrunRun: containers run by crun 1.8 (which checks the config's
// ociVersion against the versions it knows) give their output and exit
// code, as with berth-runtime.
func TestCrunRun(t *testing.T) {
	c := newCrunEnv(t)
	tests := []struct {
		name           string
		args           []string
		code           int
		stdout, stderr string
	}{
		{name: "echo", args: []string{"run", "--rm", "busybox", "echo", "hello from crun"}, stdout: "hello from crun\n"},
		{name: "exit code", args: []string{"run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 42"}, code: 42, stdout: "out\n", stderr: "err\n"},
		{name: "kept container", args: []string{"run", "--name", "kept", "busybox", "sh", "-c", "exit 3"}, code: 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := c.run(nil, tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d (stderr %q)", code, tc.code, errOut)
			}
			if tc.stdout != "" && out != tc.stdout {
				t.Errorf("stdout %q, want %q", out, tc.stdout)
			}
			if tc.stderr != "" && errOut != tc.stderr {
				t.Errorf("stderr %q, want %q", errOut, tc.stderr)
			}
		})
	}
	if got := strings.TrimSpace(c.ok("inspect", "-f", "{{.State.ExitCode}}", "kept")); got != "3" {
		t.Errorf("kept container's exit code %q, want 3", got)
	}
	c.ok("rm", "kept")
	if out := c.ok("ps", "-aq"); strings.TrimSpace(out) != "" {
		t.Errorf("containers left: %q", out)
	}
}

// TestCrunDetached: a detached container is crun's (crun's own state says
// it runs), takes an exec and stops.
func TestCrunDetached(t *testing.T) {
	c := newCrunEnv(t)
	id := strings.TrimSpace(c.ok("run", "-d", "busybox", "sh", "-c", "echo started; exec sleep 300"))
	st := exec.Command("nsenter", "-t", fmt.Sprint(c.holder.Process.Pid), "-m", "--",
		c.crun, "--root", filepath.Join(c.state, "runtime"), "state", id)
	b, err := st.Output()
	if err != nil {
		t.Fatalf("crun state %s: %v", id, err)
	}
	var state struct {
		Status string `json:"status"`
		Pid    int    `json:"pid"`
	}
	if err := json.Unmarshal(b, &state); err != nil {
		t.Fatalf("crun state: %v: %s", err, b)
	}
	if state.Status != "running" || state.Pid <= 0 {
		t.Errorf("crun state: %s", b)
	}
	if got := c.ok("exec", id, "echo", "exec'd"); got != "exec'd\n" {
		t.Errorf("exec stdout %q", got)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(c.ok("logs", id), "started") {
		if time.Now().After(deadline) {
			t.Fatalf("logs never showed the container's output")
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.ok("stop", "-t", "1", id)
	if got := strings.TrimSpace(c.ok("inspect", "-f", "{{.State.Status}}", id)); got != "exited" {
		t.Errorf("status after stop %q, want exited", got)
	}
	c.ok("rm", id)
}

// linkOrCopy hard-links src to dst (the same bytes, no copy), copying
// when they are on different filesystems.
func linkOrCopy(src, dst string) error {
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return out.Close()
}
