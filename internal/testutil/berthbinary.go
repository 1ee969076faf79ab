package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// BerthEnv names the environment variable that points the tests at a
// prebuilt berth CLI.
const BerthEnv = "BERTH_BINARY"

// BerthBinary returns the berth CLI the tests drive: $BERTH_BINARY when set,
// else a fresh static build of ./cmd/berth in a temporary directory (never a
// stale bin/berth), with the berth-runtime it runs containers with beside
// it (where berth looks first): $BERTH_RUNTIME linked there when set, else a
// fresh build too. cleanup removes the directory.
func BerthBinary() (path string, cleanup func(), err error) {
	if abs, ok, err := envBinary(BerthEnv); ok {
		return abs, func() {}, err
	}
	root, err := ModuleRoot()
	if err != nil {
		return "", nil, err
	}
	dir, err := os.MkdirTemp("", "berth-bin-")
	if err != nil {
		return "", nil, err
	}
	cleanup = func() { os.RemoveAll(dir) }
	defer func() {
		if err != nil {
			cleanup()
		}
	}()
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", nil, err
	}
	out := filepath.Join(dir, "berth")
	cmd := exec.Command("go", "build", "-trimpath", "-tags", "netgo osusergo", "-o", out, "./cmd/berth")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", nil, fmt.Errorf("go build ./cmd/berth: %w\n%s", err, strings.TrimSpace(string(b)))
	}
	rt := filepath.Join(dir, "berth-runtime")
	if abs, ok, err := envBinary(RuntimeEnv); ok {
		if err == nil {
			err = os.Symlink(abs, rt)
		}
		if err != nil {
			return "", nil, err
		}
	} else if err := BuildStatic(root, "./cmd/berth-runtime", rt); err != nil {
		return "", nil, err
	}
	return out, cleanup, nil
}
