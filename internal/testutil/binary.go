package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// RuntimeEnv names the environment variable that points the tests at a
// prebuilt berth-runtime (or another runtime with runc's command line).
const RuntimeEnv = "BERTH_RUNTIME"

// RuntimeBinary returns the berth-runtime the tests drive: $BERTH_RUNTIME when
// set, else a fresh build of ./cmd/berth-runtime in a temporary directory, made
// with the Makefile's flags (pure Go, static, the nsenter entry point,
// netgo/osusergo). Building (rather than using bin/berth-runtime) means the
// tests never run a stale binary. cleanup removes the temporary directory; it
// is a no-op when $BERTH_RUNTIME is used.
func RuntimeBinary() (path string, cleanup func(), err error) {
	if abs, ok, err := envBinary(RuntimeEnv); ok {
		return abs, func() {}, err
	}
	root, err := ModuleRoot()
	if err != nil {
		return "", nil, err
	}
	dir, err := os.MkdirTemp("", "berth-runtime-bin-")
	if err != nil {
		return "", nil, err
	}
	cleanup = func() { os.RemoveAll(dir) }
	out := filepath.Join(dir, "berth-runtime")
	if err := BuildStatic(root, "./cmd/berth-runtime", out); err != nil {
		cleanup()
		return "", nil, err
	}
	return out, cleanup, nil
}

// envBinary resolves the prebuilt binary the environment variable env
// names, as an absolute path; ok is false when env is unset.
func envBinary(env string) (abs string, ok bool, err error) {
	p := os.Getenv(env)
	if p == "" {
		return "", false, nil
	}
	if abs, err = exec.LookPath(p); err == nil {
		abs, err = filepath.Abs(abs)
	}
	if err != nil {
		return "", true, fmt.Errorf("%s=%s: %w", env, p, err)
	}
	return abs, true, nil
}

// BuildStatic builds the Go main package pkg (relative to the module at dir)
// into out with the Makefile's GO_BUILD flags: a static binary that runs in a
// rootfs without our libc. As in the Makefile, only berth-runtime is linked
// with the nsenter entry point (no other binary has that symbol).
func BuildStatic(dir, pkg, out string) error {
	goBin := os.Getenv("GO")
	if goBin == "" {
		goBin = "go"
	}
	ldflags := "-s -w"
	if filepath.Base(pkg) == "berth-runtime" {
		ldflags += " -E github.com/berth-dev/berth/internal/linux/nsenter.entry"
	}
	cmd := exec.Command(goBin, "build", "-trimpath", "-tags", "netgo osusergo",
		"-ldflags", ldflags, "-o", out, pkg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, strings.TrimSpace(string(b)))
	}
	return nil
}
