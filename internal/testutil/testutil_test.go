package testutil

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"os"
	"path/filepath"
	"testing"
)

func TestModuleRoot(t *testing.T) {
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "cmd", "berth-runtime")); err != nil {
		t.Fatalf("ModuleRoot() = %s, which has no cmd/berth-runtime: %v", root, err)
	}
}

func TestNewBundle(t *testing.T) {
	bin, cleanup, err := RuntimeBinary()
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	b := NewBundle(t, bin, Shell("true"), func(s *specs.Spec) {})
	if got := b.Spec.Process.Args; len(got) != 3 || got[2] != "true" {
		t.Fatalf("args = %q", got)
	}
	if b.Spec.Process.Terminal {
		t.Fatal("terminal left on")
	}
	if _, err := os.Stat(filepath.Join(b.Rootfs, "bin", "sh")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(b.Dir, "config.json")); err != nil {
		t.Fatal(err)
	}
}
