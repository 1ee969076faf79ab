//go:build linux

package api_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
)

// TestEngineSuiteThroughBerthd runs test/engine's whole end-to-end suite a
// second time with every berth command going through berthd: berth-remote
// (BERTH_BINARY) starts one daemon per --root/--state and runs
// `berth --host`. It is a nested `go test` of another package, so it runs
// only with BERTH_E2E_REMOTE=1 (the same switch runs it by hand:
// BERTH_BINARY=…/berth-remote go test ./test/engine, with the binaries
// beside the script).
func TestEngineSuiteThroughBerthd(t *testing.T) {
	testutil.RequiresRoot(t)
	if os.Getenv("BERTH_E2E_REMOTE") != "1" {
		t.Skip("set BERTH_E2E_REMOTE=1 to run test/engine through berthd")
	}
	root, err := testutil.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	script, err := os.ReadFile("berth-remote")
	if err != nil {
		t.Fatal(err)
	}
	shim := filepath.Join(binDir, "berth-remote")
	if err := os.WriteFile(shim, script, 0o755); err != nil {
		t.Fatal(err)
	}
	// The robustness tests SIGKILL the CLI mid-command; through berthd
	// the CLI is only a client and the daemon finishes what it started
	// (internal/api's completes), which is what they check here.
	args := []string{"test", "-count=1"}
	// The nested run must end before this test's own deadline: a timeout
	// here would panic away the nested output, which is logged only once
	// the nested run returns (its own timeout prints the stuck test and
	// every goroutine instead).
	if dl, ok := t.Deadline(); ok {
		left := time.Until(dl) - 2*time.Minute
		if left < time.Minute {
			t.Fatalf("only %v left before the test deadline", time.Until(dl))
		}
		args = append(args, "-timeout", left.Round(time.Second).String())
	}
	cmd := exec.Command("go", append(args, "./test/engine/")...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), testutil.BerthEnv+"="+shim)
	out, err := cmd.CombinedOutput()
	t.Logf("test/engine through berthd:\n%s", out)
	if err != nil {
		t.Fatalf("test/engine through berthd: %v", err)
	}
}
