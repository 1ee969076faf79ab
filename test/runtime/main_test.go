//go:build linux

// Package runtime_test drives the berth-runtime binary as a user (or
// containerd) would, against the real kernel: every test builds a bundle from
// the busybox fixture, runs the runtime's command line with a private --root
// state directory, and checks what the container observes from inside and
// what the host observes from outside.
//
// Run as root: go test -count=1 ./test/runtime/
// BERTH_RUNTIME=/path/to/runtime tests a prebuilt binary (runc works too).
package runtime_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/testutil"
)

var (
	runtimeBin string // the runtime under test
	helperBin  string // testdata/helper, static, copied into rootfses on demand
	moduleRoot string
)

// cgroupParent is where every test container's cgroupsPath lives, so a
// leftover is easy to find and the tests know which files to read.
const cgroupParent = "/berth-e2e"

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	if os.Geteuid() != 0 {
		// Every test calls testutil.RequiresRoot and skips; no build needed.
		return m.Run()
	}
	var err error
	if moduleRoot, err = testutil.ModuleRoot(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	bin, cleanup, err := testutil.RuntimeBinary()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer cleanup()
	runtimeBin = bin
	dir, err := os.MkdirTemp("", "berth-e2e-helper-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	helperBin = filepath.Join(dir, "helper")
	build := exec.Command("go", "build", "-trimpath", "-o", helperBin, "./test/runtime/testdata/helper")
	build.Dir = moduleRoot
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build helper: %v\n%s", err, out)
		return 1
	}
	if _, err := testutil.BusyboxRootfs(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer removeCgroupParent()
	return m.Run()
}

// removeCgroupParent removes the (by then empty) parent cgroups.
func removeCgroupParent() {
	for _, d := range cgroupDirs(cgroupParent) {
		_ = os.Remove(d)
	}
}

// cgroupDirs lists the directories of a cgroup path in every mounted
// hierarchy (v1 controllers, and the v2 one on a hybrid or unified host).
func cgroupDirs(p string) []string {
	ents, _ := os.ReadDir("/sys/fs/cgroup")
	var out []string
	for _, e := range ents {
		if e.IsDir() || e.Type()&os.ModeSymlink != 0 {
			d := filepath.Join("/sys/fs/cgroup", e.Name(), p)
			if _, err := os.Stat(d); err == nil {
				out = append(out, d)
			}
		}
	}
	if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", p, "cgroup.procs")); err == nil {
		out = append(out, filepath.Join("/sys/fs/cgroup", p))
	}
	return out
}

// rt is the runtime with one test's private state directory.
type rt struct {
	t    *testing.T
	root string
	bin  string
}

var idSeq atomic.Int64

// newRT skips unless root and gives the test its own --root.
func newRT(t *testing.T) *rt {
	t.Helper()
	testutil.RequiresRoot(t)
	return &rt{t: t, root: t.TempDir(), bin: runtimeBin}
}

var nonID = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)

// newID returns a container id unique to this run and registers a cleanup
// that force-deletes the container (and removes its cgroup if the runtime
// left it), whatever the test's outcome.
func (r *rt) newID() string {
	r.t.Helper()
	name := nonID.ReplaceAllString(r.t.Name(), "-")
	if len(name) > 40 {
		name = name[len(name)-40:]
	}
	id := fmt.Sprintf("e2e-%s-%d-%d", strings.Trim(name, "-."), os.Getpid(), idSeq.Add(1))
	r.t.Cleanup(func() {
		res := r.exec(context.Background(), nil, "delete", "--force", id)
		if res.code != 0 && !strings.Contains(res.stderr, "not exist") && !strings.Contains(res.stderr, "not found") {
			r.t.Logf("cleanup: delete --force %s: exit %d: %s", id, res.code, res.stderr)
		}
		for _, d := range cgroupDirs(cgroupParent + "/" + id) {
			if err := os.Remove(d); err != nil && !errors.Is(err, os.ErrNotExist) {
				r.t.Logf("cleanup: %v", err)
			}
		}
	})
	return id
}

type result struct {
	stdout, stderr string
	code           int
	cmdline        string
}

func (res result) String() string {
	return fmt.Sprintf("%s: exit %d\nstdout: %q\nstderr: %q", res.cmdline, res.code, res.stdout, res.stderr)
}

// cmdTimeout bounds every runtime invocation so a hang fails one test
// instead of the whole suite.
const cmdTimeout = 30 * time.Second

// exec runs the runtime. stdout and stderr go to files, not pipes: a
// detached container inherits them, and os/exec would otherwise wait for the
// container to close a pipe before Wait returns.
func (r *rt) exec(ctx context.Context, prep func(*exec.Cmd), args ...string) result {
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	full := append([]string{"--root", r.root}, args...)
	cmd := exec.CommandContext(ctx, r.bin, full...)
	res := result{cmdline: "berth-runtime " + strings.Join(full, " ")}
	outF, err1 := os.CreateTemp(r.root, ".stdout-")
	errF, err2 := os.CreateTemp(r.root, ".stderr-")
	if err1 != nil || err2 != nil {
		r.t.Fatalf("temp files: %v %v", err1, err2)
	}
	defer os.Remove(outF.Name())
	defer os.Remove(errF.Name())
	defer outF.Close()
	defer errF.Close()
	cmd.Stdout, cmd.Stderr = outF, errF
	if prep != nil {
		prep(cmd)
	}
	err := cmd.Run()
	if ctx.Err() != nil {
		res.code = -1
		err = fmt.Errorf("timed out after %v", cmdTimeout)
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
	default:
		res.code = -1
		res.stderr = err.Error() + "\n"
	}
	o, _ := os.ReadFile(outF.Name())
	e, _ := os.ReadFile(errF.Name())
	res.stdout, res.stderr = string(o), res.stderr+string(e)
	return res
}

// run runs the runtime and returns its result.
func (r *rt) run(args ...string) result {
	return r.exec(context.Background(), nil, args...)
}

// must runs the runtime and fails the test unless it exits 0.
func (r *rt) must(args ...string) result {
	r.t.Helper()
	res := r.run(args...)
	if res.code != 0 {
		r.t.Fatalf("%v", res)
	}
	return res
}

// bundle makes a bundle for container id: writable rootfs, the container's
// cgroup under cgroupParent, then the test's mutations.
func (r *rt) bundle(id string, mutate ...func(*specs.Spec)) *testutil.Bundle {
	r.t.Helper()
	base := func(s *specs.Spec) {
		s.Root.Readonly = false
		s.Linux.CgroupsPath = cgroupParent + "/" + id
		s.Hostname = "e2e"
	}
	return testutil.NewBundle(r.t, r.bin, append([]func(*specs.Spec){base}, mutate...)...)
}

// runFG runs a container in the foreground (`run`) and returns the result,
// whose code is the workload's exit status.
func (r *rt) runFG(mutate ...func(*specs.Spec)) result {
	r.t.Helper()
	id := r.newID()
	b := r.bundle(id, mutate...)
	return r.run("run", "--bundle", b.Dir, id)
}

// startDetached creates and starts a long-running container.
func (r *rt) startDetached(mutate ...func(*specs.Spec)) (string, *testutil.Bundle) {
	r.t.Helper()
	id := r.newID()
	mutate = append([]func(*specs.Spec){testutil.Args("sleep", "1000")}, mutate...)
	b := r.bundle(id, mutate...)
	r.must("run", "--detach", "--bundle", b.Dir, id)
	return id, b
}

// state returns the container's OCI state.
func (r *rt) state(id string) specs.State {
	r.t.Helper()
	res := r.must("state", id)
	var st specs.State
	if err := json.Unmarshal([]byte(res.stdout), &st); err != nil {
		r.t.Fatalf("state %s: %v\n%s", id, err, res.stdout)
	}
	return st
}

// waitStatus polls until the container has status want.
func (r *rt) waitStatus(id string, want specs.ContainerState) specs.State {
	r.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := r.state(id)
		if st.Status == want {
			return st
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("container %s: status %q, want %q", id, st.Status, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// wantOK fails unless res exited 0 and its stdout equals want (trimmed).
func wantOut(t *testing.T, res result, want string) {
	t.Helper()
	if res.code != 0 || strings.TrimSpace(res.stdout) != want {
		t.Fatalf("want exit 0 and stdout %q, got %v", want, res)
	}
}

func readlink(t *testing.T, p string) string {
	t.Helper()
	s, err := os.Readlink(p)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(bytes.TrimSpace(b))
}

func u64(v uint64) *uint64 { return &v }
func i64(v int64) *int64   { return &v }

type execCmd = exec.Cmd

func bg() context.Context { return context.Background() }
