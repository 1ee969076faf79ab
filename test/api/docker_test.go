//go:build linux

package api_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDockerCLI points the stock docker CLI (Debian's docker.io, or any
// docker on PATH) at berthd: version negotiation, ps, images, run with
// its exit code and streams, exec, logs, inspect, rm.
func TestDockerCLI(t *testing.T) {
	dockerBin, err := exec.LookPath("docker")
	if err != nil {
		t.Skip("no docker CLI on PATH")
	}
	d := startDaemon(t)
	d.loadBusybox()
	docker := func(stdin string, args ...string) (string, string, int) {
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
		{"version", "", []string{"version", "--format", "{{.Server.APIVersion}} {{.Server.MinAPIVersion}}"}, 0, "1.43 1.24"},
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
