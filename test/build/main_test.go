//go:build linux

// Package build_test drives `berth build` end to end, as a user would:
// every test gets its own --root and --state with the busybox fixture
// image loaded (`berth load` of its OCI layout), builds Dockerfiles and
// checks the images with `berth image inspect`, `berth run` and `berth save`.
package build_test

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
	"github.com/berth-dev/berth/internal/testutil/netclean"
)

var (
	berthBin   string
	busyboxTar string
	skipAll    string // why every test skips (berth without `build`)
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	if os.Geteuid() != 0 {
		return m.Run() // each test skips through RequiresRoot
	}
	f, cleanup, err := testutil.SetupCLI("berth-build-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer cleanup()
	berthBin, busyboxTar = f.Berth, f.BusyboxTar
	if out, err := exec.Command(berthBin, "build", "--help").CombinedOutput(); err != nil {
		skipAll = "this berth has no build command (newBuild not registered in the root command): " + strings.TrimSpace(string(out))
	}
	return m.Run()
}

// tarDir writes a directory (an OCI layout, a build context) as a tar.
func tarDir(dir, out string) error { return testutil.TarDir(dir, out) }

// env is one isolated berth instance with busybox loaded.
type env struct {
	t           *testing.T
	dir         string
	root, state string
}

// with is e for a subtest: failures end the subtest, not its parent.
func (e *env) with(t *testing.T) *env {
	c := *e
	c.t = t
	return &c
}

func newEnv(t *testing.T) *env {
	t.Helper()
	testutil.RequiresRoot(t)
	if skipAll != "" {
		t.Skip(skipAll)
	}
	d := t.TempDir()
	e := &env{t: t, dir: d, root: filepath.Join(d, "root"), state: filepath.Join(d, "state")}
	t.Cleanup(e.cleanup)
	e.ok("load", "-i", busyboxTar)
	e.ok("tag", strings.TrimSpace(e.ok("images", "-q")), "busybox")
	return e
}

// cleanup removes containers and whatever a failed test left mounted.
func (e *env) cleanup() {
	ids, _, _ := e.run(nil, "ps", "-aq", "--no-trunc")
	for _, id := range strings.Fields(ids) {
		e.run(nil, "rm", "-f", id)
	}
	// The instance's default bridge (RUN steps and test containers).
	if err := netclean.Remove(e.root, e.state); err != nil {
		e.t.Logf("cleanup: networks: %v", err)
	}
	for _, m := range mountsUnder(e.dir) {
		exec.Command("umount", "-l", m).Run()
	}
}

func mountsUnder(dir string) []string {
	var out []string
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			out = append(out, f[4])
		}
	}
	return out
}

func (e *env) cmd(args ...string) *exec.Cmd {
	return exec.Command(berthBin, append([]string{"--root", e.root, "--state", e.state}, args...)...)
}

// run returns stdout, stderr and the exit code.
func (e *env) run(stdin io.Reader, args ...string) (string, string, int) {
	out, errOut, code, err := testutil.RunCmd(e.cmd(args...), stdin)
	if err != nil {
		e.t.Fatalf("berth %s: %v", strings.Join(args, " "), err)
	}
	return out, errOut, code
}

func (e *env) ok(args ...string) string {
	e.t.Helper()
	out, errOut, code := e.run(nil, args...)
	if code != 0 {
		e.t.Fatalf("berth %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// context writes files (name → content; a name ending in "/" is a
// directory, content "->target" a symlink) into a new context directory.
func (e *env) context(files map[string]string) string {
	e.t.Helper()
	dir, err := os.MkdirTemp(e.dir, "ctx-")
	if err != nil {
		e.t.Fatal(err)
	}
	writeTree(e.t, dir, files)
	return dir
}

func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		switch {
		case strings.HasSuffix(name, "/"):
			err := os.MkdirAll(p, 0o755)
			if err != nil {
				t.Fatal(err)
			}
		case strings.HasPrefix(content, "->"):
			if err := os.Symlink(strings.TrimPrefix(content, "->"), p); err != nil {
				t.Fatal(err)
			}
		default:
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// build runs `berth build` with args and the context, returning the image
// ID (from --iidfile), stdout+stderr and the exit code.
func (e *env) build(ctx string, args ...string) (id, out string, code int) {
	e.t.Helper()
	iid := filepath.Join(e.dir, "iid")
	os.Remove(iid)
	all := append(append([]string{"build", "--progress", "plain", "--iidfile", iid}, args...), ctx)
	stdout, stderr, code := e.run(nil, all...)
	b, _ := os.ReadFile(iid)
	return strings.TrimSpace(string(b)), stdout + stderr, code
}

func (e *env) mustBuild(ctx string, args ...string) (string, string) {
	e.t.Helper()
	id, out, code := e.build(ctx, args...)
	if code != 0 || id == "" {
		e.t.Fatalf("build %v: exit %d\n%s", args, code, out)
	}
	return id, out
}

// imageConfig is the part of `image inspect` the tests compare.
type imageConfig struct {
	ID     string `json:"Id"`
	Author string
	Config struct {
		User         string
		Env          []string
		Cmd          []string
		Entrypoint   []string
		WorkingDir   string
		ExposedPorts map[string]struct{}
		Volumes      map[string]struct{}
		Labels       map[string]string
		StopSignal   string
		Shell        []string
		OnBuild      []string
		Healthcheck  *struct {
			Test     []string
			Interval int64
			Retries  int
		}
	}
	RootFS struct{ Layers []string }
}

func (e *env) inspect(ref string) imageConfig {
	e.t.Helper()
	var out []imageConfig
	if err := json.Unmarshal([]byte(e.ok("image", "inspect", ref)), &out); err != nil || len(out) != 1 {
		e.t.Fatalf("inspect %s: %v", ref, err)
	}
	return out[0]
}
