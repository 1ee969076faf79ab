package testutil

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// FixturesEnv overrides where test fixtures live (default <module>/.cache/fixtures).
const FixturesEnv = "BERTH_FIXTURES"

// BusyboxRootfs returns the busybox rootfs fixture, building it with
// scripts/fixtures/busybox-rootfs.sh when it is missing (the script is
// idempotent and quick when the fixture is current).
func BusyboxRootfs() (string, error) {
	return fixture("busybox", "bin/busybox", "busybox-rootfs.sh")
}

// fixture returns <fixtures>/<name>/rootfs, running scripts/fixtures/<script>
// to build it unless <rootfs>/<probe> exists.
func fixture(name, probe, script string) (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	fixtures := os.Getenv(FixturesEnv)
	if fixtures == "" {
		fixtures = filepath.Join(root, ".cache", "fixtures")
	}
	rootfs := filepath.Join(fixtures, name, "rootfs")
	if _, err := os.Stat(filepath.Join(rootfs, probe)); err == nil {
		return rootfs, nil
	}
	cmd := exec.Command(filepath.Join(root, "scripts", "fixtures", script), rootfs)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build %s fixture: %w\n%s", name, err, b)
	}
	return rootfs, nil
}

// Bundle is an OCI bundle in a test's temporary directory.
type Bundle struct {
	Dir    string // bundle directory (holds config.json)
	Rootfs string // Dir/rootfs, a private copy of the busybox fixture
	Spec   *specs.Spec
}

// NewBundle makes a bundle for one test: a copy of the busybox rootfs (a copy,
// not a bind mount or hard links, so that a test that writes to or attacks
// its rootfs cannot change the shared fixture) and a config.json generated
// by `runtimeBin spec`, with process.terminal off, then passed to each mutate
// in order. The directory is removed when the test ends.
func NewBundle(t testing.TB, runtimeBin string, mutate ...func(*specs.Spec)) *Bundle {
	t.Helper()
	src, err := BusyboxRootfs()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// t.TempDir and its per-test parent are 0700; a container whose root
	// is mapped to another uid (user namespace) must still be able to
	// reach its rootfs.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	b := &Bundle{Dir: dir, Rootfs: filepath.Join(dir, "rootfs")}
	if out, err := exec.Command("cp", "-a", src, b.Rootfs).CombinedOutput(); err != nil {
		t.Fatalf("copy rootfs: %v\n%s", err, out)
	}
	_ = os.Remove(filepath.Join(b.Rootfs, ".fixture-stamp"))

	cmd := exec.Command(runtimeBin, "spec")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s spec: %v\n%s", runtimeBin, err, out)
	}
	data, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	b.Spec = &specs.Spec{}
	if err := json.Unmarshal(data, b.Spec); err != nil {
		t.Fatalf("parse config.json from %s spec: %v", runtimeBin, err)
	}
	if b.Spec.Process == nil || b.Spec.Linux == nil {
		t.Fatalf("%s spec: config.json lacks process or linux: %s", runtimeBin, data)
	}
	b.Spec.Process.Terminal = false
	for _, m := range mutate {
		m(b.Spec)
	}
	b.WriteSpec(t)
	return b
}

// WriteSpec writes b.Spec to config.json (after a test changed it).
func (b *Bundle) WriteSpec(t testing.TB) {
	t.Helper()
	data, err := json.MarshalIndent(b.Spec, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b.Dir, "config.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Args sets process.args; a convenience mutator for NewBundle.
func Args(args ...string) func(*specs.Spec) {
	return func(s *specs.Spec) { s.Process.Args = args }
}

// Shell sets process.args to `sh -c script`.
func Shell(script string) func(*specs.Spec) {
	return Args("sh", "-c", script)
}

// RemoveNamespace drops a namespace from the spec (so the container shares the host's).
func RemoveNamespace(s *specs.Spec, typ specs.LinuxNamespaceType) {
	ns := s.Linux.Namespaces[:0]
	for _, n := range s.Linux.Namespaces {
		if n.Type != typ {
			ns = append(ns, n)
		}
	}
	s.Linux.Namespaces = ns
}

// SetNamespace adds a namespace, or replaces the path of an existing one.
func SetNamespace(s *specs.Spec, typ specs.LinuxNamespaceType, path string) {
	for i, n := range s.Linux.Namespaces {
		if n.Type == typ {
			s.Linux.Namespaces[i].Path = path
			return
		}
	}
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: typ, Path: path})
}

// CopyFile copies a host file into the bundle's rootfs at rel, with mode.
func (b *Bundle) CopyFile(t testing.TB, src, rel string, mode os.FileMode) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(b.Rootfs, strings.TrimPrefix(rel, "/"))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, mode); err != nil {
		t.Fatal(err)
	}
}

// DebianRootfs returns the Debian (bookworm, minbase) rootfs fixture, a
// glibc system with apt, building it with scripts/fixtures/debian-rootfs.sh
// (debootstrap from the machine's apt mirror, about 40 s) when missing.
// Tests use it read-only and in place: it is large.
func DebianRootfs() (string, error) {
	return fixture("debian", "usr/bin/apt-get", "debian-rootfs.sh")
}
