package snapshot

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/testutil"
)

// The helper is this test binary re-executed: it opens the store and stops,
// announced by "ready", at the moment named by the mode, until it is killed.
const helperEnv = "BERTH_SNAPSHOT_HELPER"

func TestHelperProcess(t *testing.T) {
	arg := os.Getenv(helperEnv)
	if arg == "" {
		t.Skip("helper process for the kill -9 tests")
	}
	var mode, root string
	fmt.Sscan(arg, &mode, &root)
	s, err := openStore(root, "native")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ready := func() { fmt.Println("ready"); select {} }
	switch mode {
	case "holding-lock":
		if _, err := s.lock(context.Background()); err == nil {
			ready()
		}
	case "mid-prepare":
		_, err = s.prepare(context.Background(), "victim", "base", nil, false, func(fsDir string, _ *record) error {
			if err := os.WriteFile(filepath.Join(fsDir, "half"), nil, 0o644); err != nil {
				return err
			}
			ready()
			return nil
		})
	}
	fmt.Fprintln(os.Stderr, "helper:", err)
	os.Exit(1)
}

// TestKillNine kills a process holding the store lock, and one in the middle
// of Prepare, and checks the next user finds a working store and Cleanup
// removes the half-made snapshot.
func TestKillNine(t *testing.T) {
	testutil.RequiresRoot(t)
	for _, mode := range []string{"holding-lock", "mid-prepare"} {
		t.Run(mode, func(t *testing.T) {
			ctx := context.Background()
			root := t.TempDir()
			s, err := NewNative(root)
			if err != nil {
				t.Fatal(err)
			}
			dir, err := s.Prepare(ctx, "base-active", "", nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Commit(ctx, "base", "base-active", ""); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
			cmd.Env = append(os.Environ(), helperEnv+"="+mode+" "+root)
			cmd.Stderr = os.Stderr
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
			if line, err := bufio.NewReader(out).ReadString('\n'); line != "ready\n" {
				t.Fatalf("helper said %q, %v", line, err)
			}
			if mode == "holding-lock" {
				// While it lives, mutations wait for it.
				short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
				_, err := s.Prepare(short, "blocked", "", nil)
				cancel()
				if err == nil {
					t.Fatal("Prepare did not wait for the lock holder")
				}
			}
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			_ = cmd.Wait()

			_, err = s.Stat(ctx, "victim")
			if !errdefs.IsNotFound(err) {
				t.Errorf("Stat of the killed Prepare: got %v, want ErrNotFound", err)
			}
			snapshots := filepath.Dir(filepath.Dir(dir))
			before, _ := os.ReadDir(snapshots)
			if mode == "mid-prepare" && len(before) != 2 {
				t.Errorf("expected the killed Prepare's orphan beside base, found %d dirs", len(before))
			}
			if err := s.Cleanup(ctx); err != nil {
				t.Fatal(err)
			}
			after, _ := os.ReadDir(snapshots)
			if len(after) != 1 {
				t.Errorf("after Cleanup: %d snapshot dirs (before: %d), want only base's", len(after), len(before))
			}
			if _, err := s.Prepare(ctx, "victim", "base", nil); err != nil {
				t.Fatalf("Prepare after the kill: %v", err)
			}
		})
	}
}
