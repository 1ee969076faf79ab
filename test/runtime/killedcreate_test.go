//go:build linux

package runtime_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestDeleteAfterKilledCreate: a create killed once the container's cgroup
// exists leaves a record that `delete --force` cleans up with: no cgroup
// directory and no state directory remain.
func TestDeleteAfterKilledCreate(t *testing.T) {
	r := newRT(t)
	id := r.newID()
	marker := filepath.Join(t.TempDir(), "hook-ran")
	// createRuntime runs in the runtime once the cgroup is set up: it
	// marks that moment and then holds create there.
	b := r.bundle(id, func(s *specs.Spec) {
		s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "echo $$ >" + marker + ".tmp; mv " + marker + ".tmp " + marker + "; exec sleep 60"}}}}
	})
	cmd := exec.Command(r.bin, "--root", r.root, "create", "--bundle", b.Dir, id)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if pid, err := os.ReadFile(marker); err == nil {
			// The hook outlives the killed runtime: end it with the test.
			defer func() {
				if n, err := strconv.Atoi(strings.TrimSpace(string(pid))); err == nil {
					_ = syscall.Kill(n, syscall.SIGKILL)
				}
			}()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the createRuntime hook never ran")
		}
	}
	cgPath := cgroupParent + "/" + id
	if len(cgroupDirs(cgPath)) == 0 {
		t.Fatalf("no cgroup %s while create is in its hooks", cgPath)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()

	r.must("delete", "--force", id)
	if d := cgroupDirs(cgPath); len(d) > 0 {
		t.Errorf("cgroup directories left after delete: %v", d)
	}
	if _, err := os.Stat(filepath.Join(r.root, id)); !os.IsNotExist(err) {
		t.Errorf("state directory left after delete: %v", err)
	}
}
