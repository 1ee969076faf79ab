//go:build linux

package runtime_test

import (
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
)

func TestSmoke(t *testing.T) {
	r := newRT(t)
	wantOut(t, r.runFG(testutil.Shell("echo hello")), "hello")
}
