//go:build linux

package build_test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
)

// TestResultIsANormalImage: a built image lists, has Docker-style history,
// pushes to a registry, pulls back into an empty store and runs, and saves
// as an archive skopeo reads.
func TestResultIsANormalImage(t *testing.T) {
	e := newEnv(t)
	ctx := e.context(map[string]string{
		"Dockerfile": `FROM busybox
ENV GREETING=hello
COPY msg.txt /msg.txt
RUN echo "$GREETING $(cat /msg.txt)" > /out
CMD ["cat", "/out"]
`,
		"msg.txt":       "world",
		".dockerignore": "secret\n",
		"secret":        "do not ship",
	})
	id, _ := e.mustBuild(ctx, "-t", "normal:v1")

	if out := e.ok("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"); !strings.Contains(out, "normal:v1 "+strings.TrimPrefix(id, "sha256:")[:12]) {
		t.Errorf("images:\n%s", out)
	}
	all := e.ok("history", "--no-trunc", "--format", "{{.CreatedBy}}|{{.Comment}}", "normal:v1")
	if !strings.Contains(all, "|buildkit.dockerfile.v0") {
		t.Errorf("history without the build comment:\n%s", all)
	}
	for _, want := range []string{"CMD [\"cat\",\"/out\"]", "RUN /bin/sh -c echo", "COPY msg.txt /msg.txt", "ENV GREETING=hello"} {
		if !strings.Contains(all, want) {
			t.Errorf("history lacks %q:\n%s", want, all)
		}
	}

	reg := testutil.StartRegistry(t, testutil.RegistryOptions{Auth: "none"})
	ref := reg.Host + "/built/normal:v1"
	e.ok("tag", "normal:v1", ref)
	e.ok("push", ref)
	fresh := newEnv(t)
	fresh.ok("pull", ref)
	if got, errOut, code := fresh.run(nil, "run", "--rm", ref); code != 0 || got != "hello world\n" {
		t.Errorf("pulled image run: %d %q %s", code, got, errOut)
	}

	archive := filepath.Join(e.dir, "normal.tar")
	e.ok("save", "-o", archive, "normal:v1")
	if _, err := exec.LookPath("skopeo"); err == nil {
		out, err := exec.Command("skopeo", "inspect", "--config", "docker-archive:"+archive).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "GREETING=hello") {
			t.Errorf("skopeo inspect of the saved image: %v\n%s", err, out)
		}
	}
	exp := filepath.Join(e.dir, "normal-export.tar")
	cid := strings.TrimSpace(e.ok("create", "normal:v1"))
	e.ok("export", "-o", exp, cid)
	for _, n := range tarNames(t, exp) {
		if n == "secret" || n == "Dockerfile" {
			t.Errorf("the image holds %s", n)
		}
	}
}

// TestPull: FROM uses the local image when there is one; --pull fetches
// the registry's current image for the same name first, as `docker build
// --pull` does.
func TestPull(t *testing.T) {
	e := newEnv(t)
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{Auth: "none"})
	base := reg.Host + "/pull/base:latest"
	// The registry holds a base with /marker; the local store holds the
	// same name for plain busybox.
	newer := e.context(map[string]string{"Dockerfile": "FROM busybox\nRUN echo newer > /marker\n"})
	e.mustBuild(newer, "-t", base)
	e.ok("push", base)
	e.ok("tag", "busybox", base)
	ctx := e.context(map[string]string{"Dockerfile": "FROM " + base + "\nRUN cat /marker 2>/dev/null > /seen || echo local > /seen\nCMD [\"cat\", \"/seen\"]\n"})
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "local\n"},
		{[]string{"--pull"}, "newer\n"},
	} {
		e.mustBuild(ctx, append([]string{"-t", "pulled"}, tc.args...)...)
		if got, errOut, code := e.run(nil, "run", "--rm", "pulled"); code != 0 || got != tc.want {
			t.Errorf("build %v: run = %d %q, want %q %s", tc.args, code, got, tc.want, errOut)
		}
	}
}
