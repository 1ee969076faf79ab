//go:build linux

package api_test

import (
	"encoding/json"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDockerCLIRuntime: `docker run --runtime runc` through berthd runs
// the container with runc, HostConfig.Runtime says so, and a container
// created with runc and started later (by a request that names no
// runtime) is runc's; `berth --host` sends the same field.
func TestDockerCLIRuntime(t *testing.T) {
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Skip("runc is not installed")
	}
	d, docker := dockerAgainstBerthd(t)
	runcState := func(id string) string {
		out, err := exec.Command(runc, "--root", filepath.Join(d.state, "runtime"), "state", id).Output()
		if err != nil {
			return ""
		}
		var st struct {
			Status string `json:"status"`
		}
		if err := json.Unmarshal(out, &st); err != nil {
			t.Fatalf("runc state %s: %v: %s", id, err, out)
		}
		return st.Status
	}

	out, errOut, code := docker("", "run", "--rm", "--runtime", "runc", "busybox", "sh", "-c", "echo through runc; exit 3")
	if code != 3 || out != "through runc\n" {
		t.Fatalf("docker run --runtime runc: exit %d stdout %q stderr %q; want 3, \"through runc\\n\"", code, out, errOut)
	}

	out, errOut, code = docker("", "create", "--runtime", "runc", "busybox", "sleep", "300")
	if code != 0 {
		t.Fatalf("docker create --runtime runc: exit %d: %s", code, errOut)
	}
	id := strings.TrimSpace(out)
	if got, _, _ := docker("", "inspect", "-f", "{{.HostConfig.Runtime}}", id); strings.TrimSpace(got) != "runc" {
		t.Errorf("HostConfig.Runtime %q, want runc", got)
	}
	if _, errOut, code := docker("", "start", id); code != 0 {
		t.Fatalf("docker start: exit %d: %s\nberthd: %s", code, errOut, d.daemonLog())
	}
	if st := runcState(id); st != "running" {
		t.Errorf("runc state after start %q, want running", st)
	}
	if got, _, _ := docker("", "exec", id, "echo", "exec'd"); got != "exec'd\n" {
		t.Errorf("docker exec stdout %q", got)
	}
	if _, errOut, code := docker("", "rm", "-f", id); code != 0 {
		t.Fatalf("docker rm -f: exit %d: %s", code, errOut)
	}
	if st := runcState(id); st != "" {
		t.Errorf("runc still knows %s after rm (%s)", id, st)
	}

	// berth's own client: the flag travels in HostConfig as well.
	if out := d.ok("run", "--rm", "--runtime", "runc", "busybox", "echo", "berth client"); out != "berth client\n" {
		t.Errorf("berth --host run --runtime runc: stdout %q", out)
	}
}

// TestCreateUnknownRuntime: dockerd's answer to a runtime it does not
// know — 400 and its words — through the API, the docker CLI (exit 125)
// and berth's client.
func TestCreateUnknownRuntime(t *testing.T) {
	d, docker := dockerAgainstBerthd(t)
	resp, err := d.http().Post("http://berth/v1.44/containers/create", "application/json",
		strings.NewReader(`{"Image":"busybox","Cmd":["true"],"HostConfig":{"Runtime":"kata"}}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var msg struct{ Message string }
	if err := json.Unmarshal(b, &msg); err != nil {
		t.Fatalf("response %d: %v: %s", resp.StatusCode, err, b)
	}
	if resp.StatusCode != 400 || msg.Message != "unknown or invalid runtime name: kata" {
		t.Errorf("create with runtime kata: %d %q; want 400 %q", resp.StatusCode, msg.Message, "unknown or invalid runtime name: kata")
	}

	_, errOut, code := docker("", "run", "--runtime", "kata", "busybox", "true")
	if code != 125 || !strings.Contains(errOut, "Error response from daemon: unknown or invalid runtime name: kata") {
		t.Errorf("docker run --runtime kata: exit %d stderr %q; want 125 and dockerd's message", code, errOut)
	}
	_, errOut, code = d.run(nil, "create", "--runtime", "kata", "busybox", "true")
	if code != 125 || !strings.Contains(errOut, "unknown or invalid runtime name: kata") {
		t.Errorf("berth --host create --runtime kata: exit %d stderr %q; want 125", code, errOut)
	}
	if out := d.ok("ps", "-aq"); strings.TrimSpace(out) != "" {
		t.Errorf("containers left: %q", out)
	}
}
