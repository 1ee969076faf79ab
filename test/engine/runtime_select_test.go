//go:build linux

package engine_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runtimeState asks an OCI runtime (runc's command line) for a
// container's state under berth's runtime root; nsenterPid > 0 runs it in
// that process's mount namespace. ok is false when the runtime does not
// know the container.
func runtimeState(t *testing.T, nsenterPid int, rt, state, id string) (status string, ok bool) {
	t.Helper()
	args := []string{rt, "--root", filepath.Join(state, "runtime"), "state", id}
	if nsenterPid > 0 {
		args = append([]string{"nsenter", "-t", fmt.Sprint(nsenterPid), "-m", "--"}, args...)
	}
	out, err := exec.Command(args[0], args[1:]...).Output()
	if err != nil {
		return "", false
	}
	var st struct {
		Status string `json:"status"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("%s state %s: %v: %s", filepath.Base(rt), id, err, out)
	}
	return st.Status, true
}

// TestRuntimeSelectRunc: `--runtime runc` runs the container with runc
// (whose own state then knows it, under berth's runtime root), records the
// name where dockerd does, and every later operation — a start long after
// the create, exec, pause, top, stop, rm — goes to runc, not to the
// engine's default.
func TestRuntimeSelectRunc(t *testing.T) {
	e := newEnv(t)
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Skip("runc is not installed")
	}
	t.Run("foreground", func(t *testing.T) {
		out, errOut, code := e.run(nil, "run", "--rm", "--runtime", "runc", "busybox", "sh", "-c", "echo out; echo err >&2; exit 7")
		if code != 7 || out != "out\n" || errOut != "err\n" {
			t.Fatalf("exit %d stdout %q stderr %q; want 7, \"out\\n\", \"err\\n\"", code, out, errOut)
		}
	})

	id := strings.TrimSpace(e.ok("create", "--runtime", "runc", "busybox", "sleep", "300"))
	if got := strings.TrimSpace(e.ok("inspect", "-f", "{{.HostConfig.Runtime}}", id)); got != "runc" {
		t.Errorf("HostConfig.Runtime %q, want runc", got)
	}
	if _, ok := runtimeState(t, 0, runc, e.state, id); ok {
		t.Fatalf("runc knows %s before its start", id)
	}
	// A later command names no runtime: the record decides.
	e.ok("start", id)
	if st, ok := runtimeState(t, 0, runc, e.state, id); !ok || st != "running" {
		t.Fatalf("runc state of %s after start: %q (known %v), want running", id, st, ok)
	}
	list, err := exec.Command(runc, "--root", filepath.Join(e.state, "runtime"), "list", "-q").Output()
	if err != nil || !strings.Contains(string(list), id) {
		t.Errorf("runc list: %q, %v; want %s", list, err, id)
	}
	if got := e.ok("exec", id, "echo", "exec'd"); got != "exec'd\n" {
		t.Errorf("exec stdout %q", got)
	}
	if out := e.ok("top", id); !strings.Contains(out, "sleep 300") {
		t.Errorf("top does not show the workload:\n%s", out)
	}
	e.ok("pause", id)
	if st, _ := runtimeState(t, 0, runc, e.state, id); st != "paused" {
		t.Errorf("runc state after pause %q, want paused", st)
	}
	e.ok("unpause", id)
	if st, _ := runtimeState(t, 0, runc, e.state, id); st != "running" {
		t.Errorf("runc state after unpause %q, want running", st)
	}
	e.ok("stop", "-t", "1", id)
	if got := strings.TrimSpace(e.ok("inspect", "-f", "{{.State.Status}}", id)); got != "exited" {
		t.Errorf("status after stop %q, want exited", got)
	}
	e.ok("rm", id)
	if _, ok := runtimeState(t, 0, runc, e.state, id); ok {
		t.Errorf("runc still knows %s after rm", id)
	}

	// No --runtime: the engine's default, recorded by name as dockerd
	// records its default.
	def := strings.TrimSpace(e.ok("create", "busybox", "true"))
	if got := strings.TrimSpace(e.ok("inspect", "-f", "{{.HostConfig.Runtime}}", def)); got != "berth-runtime" {
		t.Errorf("default HostConfig.Runtime %q, want berth-runtime", got)
	}
	e.ok("rm", def)
}

// TestRuntimeSelectAbsolutePath: an absolute path to an executable is a
// runtime too, recorded as given.
func TestRuntimeSelectAbsolutePath(t *testing.T) {
	e := newEnv(t)
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Skip("runc is not installed")
	}
	abs, err := filepath.Abs(runc)
	if err != nil {
		t.Fatal(err)
	}
	if out := e.ok("run", "--rm", "--runtime", abs, "busybox", "echo", "by path"); out != "by path\n" {
		t.Errorf("stdout %q", out)
	}
}

// TestRuntimeSelectUnknown: a name the engine does not know fails the
// create with the usage exit code and dockerd's words, leaving nothing.
func TestRuntimeSelectUnknown(t *testing.T) {
	e := newEnv(t)
	plain := filepath.Join(t.TempDir(), "runtime")
	if err := os.WriteFile(plain, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, runtime, msg string
	}{
		{name: "unknown name", runtime: "kata", msg: "unknown or invalid runtime name: kata"},
		{name: "relative path", runtime: "bin/runc", msg: "unknown or invalid runtime name: bin/runc"},
		{name: "not executable", runtime: plain, msg: plain + " is not an executable file"},
		{name: "missing", runtime: plain + ".gone", msg: "unknown or invalid runtime name: " + plain + ".gone"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, verb := range []string{"run", "create"} {
				out, errOut, code := e.run(nil, verb, "--runtime", tc.runtime, "busybox", "true")
				if code != 125 {
					t.Errorf("%s: exit %d, want 125 (stdout %q)", verb, code, out)
				}
				if !strings.Contains(errOut, tc.msg) {
					t.Errorf("%s: stderr %q does not say %q", verb, errOut, tc.msg)
				}
			}
		})
	}
	if out := e.ok("ps", "-aq"); strings.TrimSpace(out) != "" {
		t.Errorf("containers left: %q", out)
	}
}

// TestRuntimeSelectCrun: `--runtime crun` on an engine whose default is
// berth-runtime runs the container with crun (in the mount namespace
// crunEnv keeps, where crun 1.8 accepts the cgroup layout), and the
// operations after the create go to crun.
func TestRuntimeSelectCrun(t *testing.T) {
	if filepath.Base(berthBin) == "berth-remote" {
		// berthd runs the containers, and the daemon berth-remote started
		// for this root lives outside the namespace crunEnv keeps: on a
		// hybrid-cgroup host crun 1.8 refuses to run anything there.
		// (TestCrunRun still runs crun through an in-process berth.)
		t.Skip("through berthd, crun runs outside the test's mount namespace")
	}
	c := newCrunEnv(t)
	// The berth under test, whose sibling berth-runtime is berth's own:
	// only --runtime can make crun run anything.
	c.berth = berthBin
	if out := c.ok("run", "--rm", "--runtime", "crun", "busybox", "echo", "hello from crun"); out != "hello from crun\n" {
		t.Errorf("stdout %q", out)
	}
	if _, _, code := c.run(nil, "run", "--rm", "--runtime", "crun", "busybox", "sh", "-c", "exit 5"); code != 5 {
		t.Errorf("exit %d, want 5", code)
	}
	// crun 1.8 has no `features` command, so the create-time probe asks
	// crun (not berth-runtime, which has rro): a read-only bind is
	// read-only at its top only, and recursion that must be read-only is
	// refused up front instead of failing inside crun.
	host := t.TempDir()
	if _, errOut, code := c.run(nil, "run", "--rm", "--runtime", "crun", "-v", host+":/x:ro", "busybox", "touch", "/x/f"); code != 1 || !strings.Contains(errOut, "Read-only file system") {
		t.Errorf("touch in a read-only bind under crun: exit %d, stderr %q; want 1, Read-only file system", code, errOut)
	}
	if _, errOut, code := c.run(nil, "run", "--rm", "--runtime", "crun", "--mount", "type=bind,src="+host+",dst=/x,ro=true,bind-recursive=readonly,bind-propagation=rprivate", "busybox", "true"); code == 0 || !strings.Contains(errOut, "rro is not supported by runtime crun") {
		t.Errorf("bind-recursive=readonly under crun: exit %d, stderr %q; want a refusal that names crun", code, errOut)
	}
	id := strings.TrimSpace(c.ok("run", "-d", "--runtime", "crun", "busybox", "sleep", "300"))
	if got := strings.TrimSpace(c.ok("inspect", "-f", "{{.HostConfig.Runtime}}", id)); got != "crun" {
		t.Errorf("HostConfig.Runtime %q, want crun", got)
	}
	if st, ok := runtimeState(t, c.holder.Process.Pid, c.crun, c.state, id); !ok || st != "running" {
		t.Fatalf("crun state of %s: %q (known %v), want running", id, st, ok)
	}
	if got := c.ok("exec", id, "echo", "exec'd"); got != "exec'd\n" {
		t.Errorf("exec stdout %q", got)
	}
	c.ok("stop", "-t", "1", id)
	c.ok("rm", id)
	if _, ok := runtimeState(t, c.holder.Process.Pid, c.crun, c.state, id); ok {
		t.Errorf("crun still knows %s after rm", id)
	}
}
