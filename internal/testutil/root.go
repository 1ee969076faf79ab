// Package testutil holds helpers shared by berth's tests: the root-only skip,
// locating (or building) the berth-runtime binary, and OCI bundles made from
// the busybox fixture.
package testutil

import (
	"os"
	"testing"
)

// RequiresRoot skips t unless the test runs as root. Every test that creates
// namespaces, cgroups or mounts calls it first, so `go test ./...` as an
// unprivileged user reports skips, not failures.
func RequiresRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("test requires root (running as uid %d): it creates namespaces, cgroups and mounts", os.Geteuid())
	}
}
