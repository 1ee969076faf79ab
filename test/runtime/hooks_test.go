//go:build linux

package runtime_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/testutil"
)

// TestHooks: every hook runs once, in lifecycle order, with the container's
// OCI state on stdin.
func TestHooks(t *testing.T) {
	t.Parallel()
	r := newRT(t)
	id := r.newID()
	names := []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"}
	var logDir string
	hook := func(name string) []specs.Hook {
		// createContainer and startContainer run in the container's
		// mount namespace (startContainer after pivot_root), where the
		// log directory is /hooklog; the others see the host path. The
		// directory is inside the rootfs so both name the same files.
		script := `d=` + logDir + `; [ -d "$d" ] || d=/hooklog; cat > "$d/` + name + `.json"; echo ` + name + ` >> "$d/order"`
		return []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", script}}}
	}
	b := r.bundle(id, testutil.Args("sleep", "1000"))
	logDir = filepath.Join(b.Rootfs, "hooklog")
	if err := os.Mkdir(logDir, 0o777); err != nil {
		t.Fatal(err)
	}
	b.Spec.Hooks = &specs.Hooks{
		Prestart:        hook("prestart"), //nolint:staticcheck // deprecated, still part of the spec
		CreateRuntime:   hook("createRuntime"),
		CreateContainer: hook("createContainer"),
		StartContainer:  hook("startContainer"),
		Poststart:       hook("poststart"),
		Poststop:        hook("poststop"),
	}
	b.WriteSpec(t)

	r.must("create", "--bundle", b.Dir, id)
	pid := r.state(id).Pid
	r.must("start", id)
	r.waitStatus(id, specs.StateRunning)
	r.must("kill", id, "KILL")
	r.waitStatus(id, specs.StateStopped)
	r.must("delete", id)

	order, err := os.ReadFile(filepath.Join(logDir, "order"))
	if err != nil {
		t.Fatalf("no hook ran: %v", err)
	}
	if got := strings.Fields(string(order)); strings.Join(got, " ") != strings.Join(names, " ") {
		t.Errorf("hooks ran in order %v, want %v", got, names)
	}
	for _, n := range names {
		data, err := os.ReadFile(filepath.Join(logDir, n+".json"))
		if err != nil {
			t.Errorf("%s: %v", n, err)
			continue
		}
		var st specs.State
		if err := json.Unmarshal(data, &st); err != nil {
			t.Errorf("%s: stdin is not OCI state JSON: %v: %q", n, err, data)
			continue
		}
		t.Logf("%s: status %s pid %d", n, st.Status, st.Pid)
		if st.ID != id || st.Bundle != b.Dir || st.Version == "" {
			t.Errorf("%s: state %+v, want id %s bundle %s and an ociVersion", n, st, id, b.Dir)
		}
		// The spec's pid is as seen by the host; runc passes 1 (the pid
		// in the container's namespace) to the hooks that run there.
		inContainer := n == "createContainer" || n == "startContainer"
		if n != "poststop" && st.Pid != pid && !(inContainer && st.Pid == 1) {
			t.Errorf("%s: state pid %d, want the init's %d", n, st.Pid, pid)
		}
		// prestart sees "created", as the runtime-tools hooks_stdin test
		// (and runc) expect; the newer create hooks see "creating".
		want := map[string]specs.ContainerState{
			"prestart": specs.StateCreated, "createRuntime": specs.StateCreating, "createContainer": specs.StateCreating,
			"startContainer": specs.StateCreated, "poststart": specs.StateRunning, "poststop": specs.StateStopped,
		}[n]
		if st.Status != want {
			t.Errorf("%s: state status %q, want %q", n, st.Status, want)
		}
	}
}

// TestHookFailure: a failing createRuntime hook fails create and leaves
// no container behind.
func TestHookFailure(t *testing.T) {
	t.Parallel()
	r := newRT(t)
	id := r.newID()
	b := r.bundle(id, testutil.Args("sleep", "1000"), func(s *specs.Spec) {
		s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "echo hook-says-no >&2; exit 3"}}}}
	})
	res := r.run("create", "--bundle", b.Dir, id)
	if res.code == 0 {
		t.Fatalf("create with a failing hook succeeded: %v", res)
	}
	if l := r.must("list", "-q"); strings.TrimSpace(l.stdout) != "" {
		t.Errorf("container left behind after a failed create: %q", l.stdout)
	}
	for _, d := range cgroupDirs(cgroupParent + "/" + id) {
		t.Errorf("cgroup %s left behind after a failed create", d)
	}
}
