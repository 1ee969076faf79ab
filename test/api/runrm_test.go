package api_test

import (
	"fmt"
	"strings"
	"testing"
)

// TestRunRmExitCodesThroughBerthd: `berth --host run --rm` reports the
// container's own exit code and output every time. A quick workload's
// container is removed right after it exits; a client that asked for the
// exit code only once the output had ended found it gone now and then
// ("No such container", exit 125).
func TestRunRmExitCodesThroughBerthd(t *testing.T) {
	d := startDaemon(t)
	d.loadBusybox()
	for i := range 15 {
		want := i % 4
		out, errOut, code := d.run(nil, "run", "--rm", "busybox", "sh", "-c", fmt.Sprintf("echo run %d; exit %d", i, want))
		if code != want || strings.TrimSpace(out) != fmt.Sprintf("run %d", i) {
			t.Fatalf("run %d: exit %d, want %d; stdout %q stderr %q\nberthd: %s", i, code, want, out, errOut, d.daemonLog())
		}
	}
	if left := strings.TrimSpace(d.ok("ps", "-aq")); left != "" {
		t.Errorf("--rm containers left: %q", left)
	}
}
