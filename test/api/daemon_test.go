//go:build linux

package api_test

import (
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSocket: root-only socket without the group, one daemon per socket,
// a stale socket from a killed daemon is replaced.
func TestSocket(t *testing.T) {
	d := startDaemon(t)
	fi, err := os.Stat(d.sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, want 0600 socket (no such group)", fi.Mode())
	}
	second := exec.Command(filepath.Join(binDir, "berthd"), "--root", d.root, "--state", d.state, "--host", d.host())
	out, err := second.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "another berthd is serving") {
		t.Errorf("second berthd: %v\n%s", err, out)
	}
	// The first still answers.
	d.ok("version")
	// kill -9 leaves the socket file behind; the next daemon replaces it.
	_ = d.cmd.Process.Kill()
	_ = d.cmd.Wait()
	d.cmd = nil
	if _, err := os.Stat(d.sock); err != nil {
		t.Fatalf("stale socket gone already: %v", err)
	}
	d.start()
	d.ok("ps")
}

// TestSocketGroup: with the group present the socket is 0660 root:group.
func TestSocketGroup(t *testing.T) {
	d := startDaemon(t)
	g, err := user.LookupGroup("daemon") // present on Debian
	if err != nil {
		t.Skip("no group named daemon")
	}
	d.stop()
	cmd := exec.Command(filepath.Join(binDir, "berthd"), "--root", d.root, "--state", d.state, "--host", d.host(), "--group", "daemon")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Signal(os.Interrupt); _ = cmd.Wait() }()
	// Wait until the new daemon serves, not until a file is there: the
	// file may still be the stopped daemon's (a SIGINT that berthd gets
	// before it handles signals leaves its 0600 socket behind), and the
	// new daemon's is mode 0 until it is chowned and chmodded, which
	// ListenUnix does before berthd serves.
	eventually(t, 10*time.Second, "the new berthd to answer /_ping", func() bool {
		resp, err := d.http().Get("http://berth/_ping")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	fi, err := os.Stat(d.sock)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode().Perm() != 0o660 || g.Gid != strconv.FormatUint(uint64(st.Gid), 10) {
		t.Errorf("socket mode %v gid %d, want 0660 gid %s", fi.Mode().Perm(), st.Gid, g.Gid)
	}
}

// TestContainersOutliveBerthd: stopping berthd leaves containers running;
// a new berthd sees them, with their logs, and stops them.
func TestContainersOutliveBerthd(t *testing.T) {
	d := startDaemon(t)
	d.loadBusybox()
	d.ok("run", "-d", "--name", "survivor", "busybox", "sh", "-c", "echo hi; exec sleep 1000")
	d.stop()
	// Ask the store directly while no daemon runs.
	out, err := exec.Command(filepath.Join(binDir, "berth"), "--root", d.root, "--state", d.state, "inspect", "--format", "{{.State.Status}}", "survivor").CombinedOutput()
	if err != nil || string(out) != "running\n" {
		t.Fatalf("with berthd stopped: %v %q", err, out)
	}
	d.start()
	if out := d.ok("ps", "--format", "{{.Names}} {{.Status}}"); !strings.HasPrefix(out, "survivor Up") {
		t.Errorf("ps after berthd restart: %q", out)
	}
	if out := d.ok("logs", "survivor"); out != "hi\n" {
		t.Errorf("logs: %q", out)
	}
	d.ok("stop", "-t", "1", "survivor")
	if out := d.ok("inspect", "--format", "{{.State.ExitCode}}", "survivor"); out != "137\n" {
		t.Errorf("exit code after stop: %q", out)
	}
}
