//go:build linux

package engine_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRunExitCodesAndStreams(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name           string
		stdin          string
		args           []string
		code           int
		stdout, stderr string
	}{
		{name: "echo", args: []string{"run", "--rm", "busybox", "echo", "hello"}, stdout: "hello\n"},
		{name: "exit code", args: []string{"run", "--rm", "busybox", "sh", "-c", "exit 42"}, code: 42},
		{name: "streams apart", args: []string{"run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2"}, stdout: "out\n", stderr: "err\n"},
		{name: "stdin pipe", stdin: "hi\n", args: []string{"run", "--rm", "-i", "busybox", "cat"}, stdout: "hi\n"},
		{name: "not found", args: []string{"run", "--rm", "busybox", "/no/such/binary"}, code: 127, stderr: "no such file"},
		{name: "cannot invoke", args: []string{"run", "--rm", "busybox", "/etc"}, code: 126},
		{name: "engine error", args: []string{"run", "--rm", "no-such-image:v9", "true"}, code: 125},
		{name: "env and workdir", args: []string{"run", "--rm", "-e", "A=b", "-w", "/tmp", "busybox", "sh", "-c", "echo $A $(pwd)"}, stdout: "b /tmp\n"},
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
				out, errOut, code = e.run(in, tc.args...)
			} else {
				out, errOut, code = e.run(nil, tc.args...)
			}
			if code != tc.code {
				t.Fatalf("exit %d, want %d (stderr %q)", code, tc.code, errOut)
			}
			if tc.stdout != "" && out != tc.stdout {
				t.Errorf("stdout %q, want %q", out, tc.stdout)
			}
			if tc.stderr != "" && !strings.Contains(errOut, tc.stderr) {
				t.Errorf("stderr %q, want it to contain %q", errOut, tc.stderr)
			}
		})
	}
	// --rm left nothing behind.
	if out := e.ok("ps", "-aq"); strings.TrimSpace(out) != "" {
		t.Errorf("containers left after --rm runs: %q", out)
	}
}

func TestDetachedLifecycle(t *testing.T) {
	e := newEnv(t)
	id := strings.TrimSpace(e.ok("run", "-d", "--name", "web", "--label", "tier=front", "busybox",
		"sh", "-c", "trap 'exit 0' TERM; echo started; echo oops >&2; while true; do sleep 0.1; done"))
	if len(id) != 64 {
		t.Fatalf("run -d printed %q, want a 64-hex ID", id)
	}
	// Both lines: the monitor copies stdout and stderr from two pipes, so
	// "started" in the log says nothing of "oops" yet, which the logs
	// subtest expects.
	eventually(t, 10*time.Second, "log output", func() bool {
		out, errOut, _ := e.run(nil, "logs", "web")
		return strings.Contains(out, "started") && strings.Contains(errOut, "oops")
	})

	t.Run("ps", func(t *testing.T) {
		out := e.ok("ps")
		for _, want := range []string{"CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES", id[:12], "Up ", "web"} {
			if !strings.Contains(out, want) {
				t.Errorf("ps output lacks %q:\n%s", want, out)
			}
		}
		if got := strings.TrimSpace(e.ok("ps", "-q", "--filter", "label=tier=front")); got != id[:12] {
			t.Errorf("ps --filter label: %q", got)
		}
		if got := strings.TrimSpace(e.ok("ps", "-q", "--filter", "status=exited")); got != "" {
			t.Errorf("ps --filter status=exited: %q", got)
		}
		if got := strings.TrimSpace(e.ok("ps", "--no-trunc", "--format", "{{.ID}} {{.Names}} {{.State}}")); got != id+" web running" {
			t.Errorf("ps --format: %q", got)
		}
	})
	t.Run("logs", func(t *testing.T) {
		out, errOut, _ := e.run(nil, "logs", "web")
		if out != "started\n" || errOut != "oops\n" {
			t.Errorf("logs: stdout %q stderr %q", out, errOut)
		}
		out, errOut, _ = e.run(nil, "logs", "-t", "--tail", "1", "web")
		if all := out + errOut; strings.Count(all, "\n") != 1 || !strings.Contains(all, "Z ") {
			t.Errorf("logs -t --tail 1: stdout %q stderr %q", out, errOut)
		}
	})
	t.Run("exec", func(t *testing.T) {
		out, _, code := e.run(nil, "exec", "-e", "X=1", "-w", "/etc", "web", "sh", "-c", "echo $X $(pwd); exit 3")
		if code != 3 || out != "1 /etc\n" {
			t.Errorf("exec: %q exit %d", out, code)
		}
		if out, _, _ := e.run(strings.NewReader("piped"), "exec", "-i", "web", "cat"); out != "piped" {
			t.Errorf("exec -i: %q", out)
		}
		if _, _, code := e.run(nil, "exec", "web", "nosuchcmd"); code != 127 && code != 126 {
			t.Errorf("exec of a missing command: exit %d", code)
		}
		if out := e.ok("exec", "-u", "nobody", "web", "id", "-u"); strings.TrimSpace(out) != "65534" {
			t.Errorf("exec -u nobody: %q", out)
		}
	})
	t.Run("inspect", func(t *testing.T) {
		got := strings.TrimSpace(e.ok("inspect", "-f", "{{.Name}} {{.State.Status}} {{.State.Running}} {{.Config.Labels.tier}}", "web"))
		if got != "/web running true front" {
			t.Errorf("inspect: %q", got)
		}
		if out := e.ok("inspect", "busybox"); !strings.Contains(out, "RootFS") {
			t.Errorf("inspect of an image: %s", out)
		}
	})
	t.Run("top and stats", func(t *testing.T) {
		if out := e.ok("top", "web"); !strings.Contains(out, "PID") || !strings.Contains(out, "sleep") && !strings.Contains(out, "sh -c") {
			t.Errorf("top: %s", out)
		}
		if out := e.ok("stats", "--no-stream", "web"); !strings.Contains(out, "web") || !strings.Contains(out, "MEM") {
			t.Errorf("stats: %s", out)
		}
	})
	t.Run("pause", func(t *testing.T) {
		e.ok("pause", "web")
		if out := e.ok("ps", "--format", "{{.Status}}"); !strings.Contains(out, "(Paused)") {
			t.Errorf("paused status: %q", out)
		}
		e.ok("unpause", "web")
	})
	t.Run("cp and diff and commit", func(t *testing.T) {
		src := filepath.Join(t.TempDir(), "hello.txt")
		if err := os.WriteFile(src, []byte("from host"), 0o644); err != nil {
			t.Fatal(err)
		}
		e.ok("cp", src, "web:/tmp/")
		if out := e.ok("exec", "web", "cat", "/tmp/hello.txt"); out != "from host" {
			t.Errorf("cp into container: %q", out)
		}
		// A symlink in the container pointing at the host's /etc must
		// resolve inside the container.
		e.ok("exec", "web", "sh", "-c", "echo inside > /etc/marker; ln -s /etc /tmp/link")
		dst := t.TempDir()
		e.ok("cp", "web:/tmp/link/marker", filepath.Join(dst, "m"))
		b, _ := os.ReadFile(filepath.Join(dst, "m"))
		if got := strings.TrimSpace(string(b)); got != "inside" {
			t.Errorf("cp through an in-container symlink read %q, want the container's file", got)
		}
		// Absolute links climbing out resolve inside too.
		e.ok("exec", "web", "ln", "-s", "../../../../../../etc/marker", "/tmp/climb")
		e.ok("cp", "web:/tmp/climb", filepath.Join(dst, "c"))
		if l, err := os.Readlink(filepath.Join(dst, "c")); err != nil || l != "../../../../../../etc/marker" {
			t.Errorf("cp of a symlink: %q %v (want the link itself)", l, err)
		}
		if out := e.ok("diff", "web"); !strings.Contains(out, "A /tmp/hello.txt") || !strings.Contains(out, "C /tmp") {
			t.Errorf("diff: %s", out)
		}
		imgID := strings.TrimSpace(e.ok("commit", "web", "committed:v1"))
		if !strings.HasPrefix(imgID, "sha256:") {
			t.Fatalf("commit printed %q", imgID)
		}
		if out := e.ok("run", "--rm", "committed:v1", "cat", "/tmp/hello.txt"); out != "from host" {
			t.Errorf("committed image content: %q", out)
		}
	})
	t.Run("rename restart stop wait", func(t *testing.T) {
		e.ok("rename", "web", "web2")
		started := e.ok("inspect", "-f", "{{.State.StartedAt}}", "web2")
		e.ok("restart", "-t", "5", "web2")
		if again := e.ok("inspect", "-f", "{{.State.StartedAt}}", "web2"); again == started {
			t.Errorf("restart kept StartedAt %s", started)
		}
		e.ok("stop", "web2")
		if got := strings.TrimSpace(e.ok("wait", "web2")); got != "0" {
			t.Errorf("wait after a trapped TERM: %q", got)
		}
		if out := e.ok("ps", "-a", "--format", "{{.Status}}"); !strings.HasPrefix(out, "Exited (0)") {
			t.Errorf("status after stop: %q", out)
		}
		if _, _, code := e.run(nil, "rm", "no-such"); code != 1 {
			t.Errorf("rm of a missing container: exit %d", code)
		}
	})
	t.Run("events", func(t *testing.T) {
		out := e.ok("events", "--since", "1h", "--until", "0s", "--filter", "container=web2", "--filter", "event=stop")
		if !strings.Contains(out, "container stop "+id) {
			t.Errorf("events: %s", out)
		}
	})
	t.Run("kill and rm -f", func(t *testing.T) {
		e.ok("run", "-d", "--name", "victim", "busybox", "sleep", "100")
		if _, _, code := e.run(nil, "rm", "victim"); code == 0 {
			t.Errorf("rm of a running container succeeded")
		}
		e.ok("kill", "victim")
		if got := strings.TrimSpace(e.ok("wait", "victim")); got != "137" {
			t.Errorf("exit code after kill: %s", got)
		}
		e.ok("start", "victim")
		e.ok("rm", "-f", "victim")
		if out, _, _ := e.run(nil, "inspect", "victim"); strings.Contains(out, "victim") {
			t.Errorf("victim still there")
		}
	})
	t.Run("prune", func(t *testing.T) {
		out := e.ok("container", "prune", "-f")
		if !strings.Contains(out, id) {
			t.Errorf("prune: %s", out)
		}
		if out := e.ok("ps", "-aq"); strings.TrimSpace(out) != "" {
			t.Errorf("after prune: %q", out)
		}
	})
}
