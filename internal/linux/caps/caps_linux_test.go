package caps

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// childEnv makes the test binary act as a child that changes its own
// capabilities: they cannot be given back, so each case gets a process.
const childEnv = "BERTH_CAPS_TEST_CHILD"

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		runtime.LockOSThread() // never unlocked: the thread dies with the process
		if err := runChild(mode); err != nil {
			fmt.Fprintf(os.Stderr, "child %s: %v\n", mode, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: changes the bounding set and capabilities of a child")
	}
}

// mask parses names known to be valid.
func mask(names ...string) Set {
	s, err := Parse(names)
	if err != nil {
		panic(err) // test table bug
	}
	return s
}

// threadCaps reads the calling thread's sets from /proc/thread-self/status.
func threadCaps() (map[string]Set, error) {
	b, err := os.ReadFile("/proc/thread-self/status")
	if err != nil {
		return nil, err
	}
	out := map[string]Set{}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || !strings.HasPrefix(k, "Cap") {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", line, err)
		}
		out[k] = Set(n)
	}
	return out, nil
}

func expectCaps(want map[string]Set) error {
	got, err := threadCaps()
	if err != nil {
		return err
	}
	for k, w := range want {
		if got[k] != w {
			return fmt.Errorf("%s = %#x %v, want %#x %v", k, got[k], got[k].Names(), w, w.Names())
		}
	}
	return nil
}

var testCaps = &specs.LinuxCapabilities{
	Bounding:    []string{"CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"},
	Permitted:   []string{"CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"},
	Effective:   []string{"CAP_CHOWN", "CAP_KILL"},
	Inheritable: []string{"CAP_KILL", "CAP_NET_BIND_SERVICE"},
	Ambient:     []string{"CAP_KILL"},
}

func testCapsWant() map[string]Set {
	return map[string]Set{
		"CapBnd": mask("CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"),
		"CapPrm": mask("CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"),
		"CapEff": mask("CAP_CHOWN", "CAP_KILL"),
		"CapInh": mask("CAP_KILL", "CAP_NET_BIND_SERVICE"),
		"CapAmb": mask("CAP_KILL"),
	}
}

func runChild(mode string) error {
	file := os.Getenv("BERTH_CAPS_TEST_FILE")
	switch mode {
	case "apply":
		if err := Apply(testCaps); err != nil {
			return err
		}
		if err := expectCaps(testCapsWant()); err != nil {
			return err
		}
		// CAP_CHOWN is effective: chown works.
		return unix.Chown(file, 1000, 1000)
	case "no-chown":
		if err := Apply(&specs.LinuxCapabilities{
			Bounding:  []string{"CAP_KILL"},
			Permitted: []string{"CAP_KILL"},
			Effective: []string{"CAP_KILL"},
		}); err != nil {
			return err
		}
		if err := unix.Chown(file, 1000, 1000); !errors.Is(err, unix.EPERM) {
			return fmt.Errorf("chown without CAP_CHOWN: got %v, want EPERM", err)
		}
		return nil
	case "setuid":
		// The runtime's order around a user switch, documented in the
		// package comment. setresuid is made raw so it changes only this
		// thread, as the container init's single relevant thread.
		if err := DropBounding(testCaps); err != nil {
			return err
		}
		if err := KeepCaps(true); err != nil {
			return err
		}
		if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, 1000, 1000, 1000); e != 0 {
			return fmt.Errorf("setresuid: %v", e)
		}
		if err := KeepCaps(false); err != nil {
			return err
		}
		if err := ApplySets(testCaps); err != nil {
			return err
		}
		return expectCaps(testCapsWant())
	case "ambient-not-inheritable":
		err := Apply(&specs.LinuxCapabilities{
			Bounding:  []string{"CAP_KILL"},
			Permitted: []string{"CAP_KILL"},
			Ambient:   []string{"CAP_KILL"},
		})
		if err != nil {
			return fmt.Errorf("got %v, want the unraisable ambient capability skipped as runc does", err)
		}
		return expectCaps(map[string]Set{"CapAmb": 0})
	}
	return fmt.Errorf("unknown mode %q", mode)
}

func TestApplyInChild(t *testing.T) {
	requireRoot(t)
	for _, mode := range []string{"apply", "no-chown", "setuid", "ambient-not-inheritable"} {
		t.Run(mode, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "f")
			if err := os.WriteFile(file, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), childEnv+"="+mode, "BERTH_CAPS_TEST_FILE="+file)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("child: %v\n%s", err, out)
			}
		})
	}
}

func TestLastCap(t *testing.T) {
	last, err := LastCap()
	if err != nil {
		t.Fatal(err)
	}
	if last < 36 || last > 63 {
		t.Fatalf("LastCap = %d", last)
	}
}

func TestValidate(t *testing.T) {
	if err := Validate(nil); err != nil {
		t.Fatal(err)
	}
	err := Validate(&specs.LinuxCapabilities{Ambient: []string{"CAP_NOPE"}})
	if err == nil || !strings.Contains(err.Error(), "ambient") || !strings.Contains(err.Error(), "CAP_NOPE") {
		t.Fatalf("got %v", err)
	}
}
