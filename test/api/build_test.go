//go:build linux

package api_test

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBuildThroughBerthd: `berth --host … build` sends the context to
// POST /build and gets the image: a context directory, a Dockerfile from
// stdin and build arguments, and the image runs afterwards.
func TestBuildThroughBerthd(t *testing.T) {
	d := startDaemon(t)
	d.loadBusybox()
	ctxDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte("FROM busybox\nARG WHO=nobody\nCOPY greeting /greeting\nRUN echo \"built by $WHO\" > /by\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ctxDir, "greeting"), []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		stdin string
		args  []string
		want  string
	}{
		{"context dir", "", []string{"build", "-t", "built:dir", "--build-arg", "WHO=berthd", ctxDir}, "hello\nbuilt by berthd\n"},
		{"dockerfile on stdin", "FROM busybox\nCOPY greeting /greeting\nRUN echo stdin > /by\n", []string{"build", "-t", "built:stdin", "-f", "-", ctxDir}, "hello\nstdin\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var in io.Reader
			if tc.stdin != "" {
				in = strings.NewReader(tc.stdin)
			}
			out, errOut, code := d.run(in, tc.args...)
			if code != 0 {
				t.Fatalf("build: exit %d\n%s%s\nberthd: %s", code, out, errOut, d.daemonLog())
			}
			tag := tc.args[2]
			if got := d.ok("run", "--rm", tag, "cat", "/greeting", "/by"); got != tc.want {
				t.Errorf("image %s: got %q, want %q", tag, got, tc.want)
			}
		})
	}
	if out, errOut, code := d.run(nil, "build", "-q", "-t", "built:q", ctxDir); code != 0 || !strings.HasPrefix(out, "sha256:") {
		t.Errorf("build -q: exit %d, stdout %q\n%s", code, out, errOut)
	}
}
