package engine

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestStateWatchWakes: a waiter on a container's state wakes when the
// monitor renames monitor.json into the bundle, or when the process it
// names exits, long before its timeout.
func TestStateWatchWakes(t *testing.T) {
	tests := []struct {
		name  string
		event func(t *testing.T, bundle string, proc *exec.Cmd)
	}{
		{"monitor.json replaced", func(t *testing.T, bundle string, _ *exec.Cmd) {
			tmp := filepath.Join(bundle, "monitor.json.tmp")
			if err := os.WriteFile(tmp, []byte(`{"Status":"exited"}`), 0o600); err != nil {
				t.Error(err)
			}
			if err := os.Rename(tmp, filepath.Join(bundle, "monitor.json")); err != nil {
				t.Error(err)
			}
		}},
		{"bundle removed", func(t *testing.T, bundle string, _ *exec.Cmd) {
			if err := os.RemoveAll(bundle); err != nil {
				t.Error(err)
			}
		}},
		{"process exited", func(t *testing.T, _ string, proc *exec.Cmd) {
			_ = proc.Process.Kill()
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := &Engine{opts: Options{State: t.TempDir()}}
			id := "c1"
			if err := os.MkdirAll(e.bundleDir(id), 0o700); err != nil {
				t.Fatal(err)
			}
			proc := exec.Command("sleep", "30")
			if err := proc.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { _ = proc.Process.Kill(); _ = proc.Wait() }()
			w := e.watchState(id)
			if w == nil {
				t.Fatal("no inotify watch")
			}
			defer w.close()
			go func() {
				time.Sleep(50 * time.Millisecond)
				tc.event(t, e.bundleDir(id), proc)
			}()
			start := time.Now()
			w.wait(proc.Process.Pid, 5*time.Second)
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("woke after %v, want soon after the event (50 ms)", d)
			}
		})
	}
}
