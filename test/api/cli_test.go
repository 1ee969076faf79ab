//go:build linux

package api_test

import (
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
)

// TestRunExitCodes: `berth --host` gives Docker's exit codes and keeps
// stdout and stderr apart, as the local path does.
func TestRunExitCodes(t *testing.T) {
	d := startDaemon(t)
	d.loadBusybox()
	tests := []struct {
		name           string
		stdin          string
		args           []string
		code           int
		stdout, stderr string // substrings
	}{
		{"success", "", []string{"run", "--rm", "busybox", "echo", "hello"}, 0, "hello\n", ""},
		{"container's code and streams", "", []string{"run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3"}, 3, "out\n", "err\n"},
		{"not found", "", []string{"run", "--rm", "busybox", "nosuchcmd"}, 127, "", "executable file not found"},
		{"cannot invoke", "", []string{"run", "--rm", "busybox", "/etc"}, 126, "", "is a directory"},
		{"engine error", "", []string{"run", "--rm", "--pull", "never", "nosuchimage"}, 125, "", "nosuchimage"},
		{"bad flag", "", []string{"run", "--no-such-flag", "busybox"}, 125, "", "unknown flag"},
		{"stdin pipe", "piped\n", []string{"run", "-i", "--rm", "busybox", "cat"}, 0, "piped\n", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var in *strings.Reader
			if tc.stdin != "" {
				in = strings.NewReader(tc.stdin)
			}
			var out, errOut string
			var code int
			if in != nil {
				out, errOut, code = d.run(in, tc.args...)
			} else {
				out, errOut, code = d.run(nil, tc.args...)
			}
			if code != tc.code || !strings.Contains(out, tc.stdout) || !strings.Contains(errOut, tc.stderr) {
				t.Errorf("berth %v: exit %d (want %d)\nstdout %q (want %q)\nstderr %q (want %q)", tc.args, code, tc.code, out, tc.stdout, errOut, tc.stderr)
			}
			if tc.stdout == "" && out != "" {
				t.Errorf("unexpected stdout %q", out)
			}
		})
	}
	if out := d.ok("ps", "-aq"); out != "" {
		t.Errorf("--rm left containers: %q", out)
	}
}

// TestContainerFlows: the daily commands through berthd.
func TestContainerFlows(t *testing.T) {
	d := startDaemon(t)
	d.loadBusybox()
	id := strings.TrimSpace(d.ok("run", "-d", "--name", "web", "--label", "app=x", "busybox", "sh", "-c", "echo started; exec sleep 1000"))
	if len(id) != 64 {
		t.Fatalf("run -d printed %q", id)
	}
	if out := d.ok("ps", "--format", "{{.Names}} {{.Status}}"); !strings.HasPrefix(out, "web Up") {
		t.Errorf("ps: %q", out)
	}
	if out := d.ok("ps", "-q", "--filter", "label=app=x"); strings.TrimSpace(out) != id[:12] {
		t.Errorf("ps --filter: %q", out)
	}
	eventually(t, 5*time.Second, "logs", func() bool { return d.ok("logs", "web") == "started\n" })
	if out, _, code := d.run(nil, "exec", "web", "sh", "-c", "echo in-exec; exit 4"); code != 4 || out != "in-exec\n" {
		t.Errorf("exec: exit %d, %q", code, out)
	}
	if out, _, code := d.run(strings.NewReader("via stdin\n"), "exec", "-i", "web", "cat"); code != 0 || out != "via stdin\n" {
		t.Errorf("exec -i: exit %d, %q", code, out)
	}
	if _, errOut, code := d.run(nil, "exec", "web", "nosuchcmd"); code != 127 {
		t.Errorf("exec of a missing command: exit %d, %s", code, errOut)
	}
	if out := d.ok("inspect", "--format", "{{.State.Status}} {{.Name}} {{index .Config.Labels \"app\"}}", "web"); out != "running /web x\n" {
		t.Errorf("inspect --format: %q", out)
	}
	d.ok("stop", "-t", "1", "web")
	if out := d.ok("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", "web"); out != "exited 137\n" {
		t.Errorf("after stop: %q", out)
	}
	if _, errOut, code := d.run(nil, "rm", "nosuch"); code == 0 || !strings.Contains(errOut, "No such container: nosuch") {
		t.Errorf("rm of a missing container: exit %d, %q", code, errOut)
	}
	d.ok("rm", "web")
	if out := d.ok("ps", "-aq"); out != "" {
		t.Errorf("after rm: %q", out)
	}
	d.ok("rmi", "busybox")
	if _, _, code := d.run(nil, "image", "inspect", "busybox"); code == 0 {
		t.Error("image still there after rmi")
	}
}

// TestPullThroughBerthd: pull from a registry on loopback streams
// progress and stores the image in the daemon's store.
func TestPullThroughBerthd(t *testing.T) {
	d := startDaemon(t)
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{})
	ref := reg.Host + "/test/busybox:1"
	testutil.PushLayout(t, busyboxDir, ref)
	out := d.ok("pull", ref)
	for _, want := range []string{"1: Pulling from test/busybox", "Digest: sha256:", "Status: Downloaded newer image for " + ref, ref} {
		if !strings.Contains(out, want) {
			t.Errorf("pull output lacks %q:\n%s", want, out)
		}
	}
	if out := d.ok("pull", ref); !strings.Contains(out, "Status: Image is up to date") {
		t.Errorf("second pull:\n%s", out)
	}
	if out := d.ok("images", "--format", "{{.Repository}}:{{.Tag}}"); strings.TrimSpace(out) != ref {
		t.Errorf("images: %q", out)
	}
	if out := d.ok("run", "--rm", ref, "echo", "pulled"); out != "pulled\n" {
		t.Errorf("run: %q", out)
	}
	if _, errOut, code := d.run(nil, "pull", reg.Host+"/test/nosuch:1"); code == 0 || errOut == "" {
		t.Errorf("pull of a missing image: exit %d, %q", code, errOut)
	}
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
