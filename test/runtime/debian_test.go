//go:build linux

package runtime_test

import (
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/testutil"
)

// A glibc distribution, shared read-only in place: dynamic linking, the
// user database through NSS and apt all work inside the container.
func TestDebianRootfs(t *testing.T) {
	r := newRT(t)
	rootfs, err := testutil.DebianRootfs()
	if err != nil {
		t.Fatal(err)
	}
	res := r.runFG(func(s *specs.Spec) {
		s.Root = &specs.Root{Path: rootfs, Readonly: true}
	}, testutil.Shell(`. /etc/os-release; echo "id=$ID"; getent passwd root | cut -d: -f6; apt-get --version | head -n1; ldd --version | head -n1`))
	if res.code != 0 {
		t.Fatalf("debian container failed: %s", res)
	}
	for _, want := range []string{"id=debian", "/root", "apt ", "GLIBC"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, res.stdout)
		}
	}
}
