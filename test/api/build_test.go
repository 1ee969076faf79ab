//go:build linux

package api_test

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
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

// TestBuildIgnoreFilesThroughBerthd: over --host the context's ignore file
// and a Dockerfile's own NAME.dockerignore apply as in a local build, and
// the Dockerfile the client injects into the context (with its ignore
// file) does not show to COPY.
func TestBuildIgnoreFilesThroughBerthd(t *testing.T) {
	d := startDaemon(t)
	d.loadBusybox()
	ctxDir, outside := t.TempDir(), t.TempDir()
	files := map[string]string{
		filepath.Join(ctxDir, ".dockerignore"):                "a.txt\n",
		filepath.Join(ctxDir, "a.txt"):                        "a\n",
		filepath.Join(ctxDir, "b.txt"):                        "b\n",
		filepath.Join(ctxDir, "keep.txt"):                     "keep\n",
		filepath.Join(outside, "own.Dockerfile"):              "FROM busybox\nCOPY . /out\n",
		filepath.Join(outside, "own.Dockerfile.dockerignore"): "b.txt\n",
		filepath.Join(outside, "plain.Dockerfile"):            "FROM busybox\nCOPY . /out\n",
	}
	for p, content := range files {
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctxTar := filepath.Join(t.TempDir(), "context.tar")
	if err := testutil.TarDir(ctxDir, ctxTar); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		stdin string
		args  []string
		want  string
	}{
		{"own ignore file beside an outside Dockerfile", "", []string{"-f", filepath.Join(outside, "own.Dockerfile"), ctxDir}, ".dockerignore a.txt keep.txt"},
		{"outside Dockerfile without one", "", []string{"-f", filepath.Join(outside, "plain.Dockerfile"), ctxDir}, ".dockerignore b.txt keep.txt"},
		{"Dockerfile on stdin", "FROM busybox\nCOPY . /out\n", []string{"-f", "-", ctxDir}, ".dockerignore b.txt keep.txt"},
		{"Dockerfile on stdin, tar context", "FROM busybox\nCOPY . /out\n", []string{"-f", "-", ctxTar}, ".dockerignore b.txt keep.txt"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tag := fmt.Sprintf("ignored:%d", i)
			var in io.Reader
			if tc.stdin != "" {
				in = strings.NewReader(tc.stdin)
			}
			args := append([]string{"build", "-q", "-t", tag}, tc.args...)
			if out, errOut, code := d.run(in, args...); code != 0 {
				t.Fatalf("build: exit %d\n%s%s\nberthd: %s", code, out, errOut, d.daemonLog())
			}
			got := strings.Join(strings.Fields(d.ok("run", "--rm", tag, "ls", "-A", "/out")), " ")
			if got != tc.want {
				t.Errorf("/out holds %q, want %q", got, tc.want)
			}
		})
	}
}
