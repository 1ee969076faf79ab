//go:build linux

package build_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
)

// TestDebianCompileStage is the multi-stage build of the issue: a Go
// program compiled in a Debian (debootstrap) stage and copied into a
// busybox stage and a scratch stage, then run.
//
// Deviation, on purpose: the Debian fixture is a minbase debootstrap
// without a compiler, and nothing may reach the network, so the stage
// does not apt-get one. The host's Go toolchain is bind-mounted into the
// context and reaches the RUN step through RUN --mount=type=bind (read
// only); the compile happens inside the Debian container with its cache on
// a RUN --mount=type=cache directory.
func TestDebianCompileStage(t *testing.T) {
	e := newEnv(t)
	goroot, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Skipf("no Go toolchain on the host to mount into the Debian stage: %v", err)
	}
	deb, err := testutil.DebianImage()
	if err != nil {
		t.Fatalf("debian image: %v", err)
	}
	debTar := filepath.Join(e.dir, "debian.tar")
	if err := tarDir(deb.Dir, debTar); err != nil {
		t.Fatal(err)
	}
	before := strings.Fields(e.ok("images", "-q", "--no-trunc"))
	e.ok("load", "-i", debTar)
	for _, id := range strings.Fields(e.ok("images", "-q", "--no-trunc")) {
		if !contains(before, id) {
			e.ok("tag", id, "debian:bookworm")
		}
	}

	ctx := e.context(map[string]string{
		"hello.go": `package main

import "os"

func main() { os.Stdout.WriteString("hello from a Go program built in Debian\n") }
`,
		"Dockerfile": `FROM debian:bookworm AS build
ENV HOME=/root CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-trimpath
WORKDIR /src
COPY hello.go .
RUN --mount=type=bind,source=goroot,target=/usr/local/go \
    --mount=type=cache,target=/root/.cache/go-build \
    cat /etc/debian_version && /usr/local/go/bin/go build -o /out/hello hello.go

FROM busybox AS app
COPY --from=build /out/hello /usr/local/bin/hello
CMD ["hello"]

FROM scratch AS minimal
COPY --from=build /out/hello /hello
ENTRYPOINT ["/hello"]
`,
	})
	mnt := filepath.Join(ctx, "goroot")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "--bind", "-o", "ro", strings.TrimSpace(string(goroot)), mnt).CombinedOutput(); err != nil {
		t.Fatalf("bind the Go toolchain into the context: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", mnt).Run() })

	_, out := e.mustBuild(ctx, "-t", "hello:busybox", "--target", "app")
	if !strings.Contains(out, "12.") {
		t.Errorf("the compile step did not run on Debian 12:\n%s", out)
	}
	e.mustBuild(ctx, "-t", "hello:scratch")
	for _, tag := range []string{"hello:busybox", "hello:scratch"} {
		got, errOut, code := e.run(nil, "run", "--rm", tag)
		if code != 0 || got != "hello from a Go program built in Debian\n" {
			t.Errorf("%s: exit %d %q %s", tag, code, got, errOut)
		}
	}
	// The scratch image holds exactly the one binary.
	exp := filepath.Join(e.dir, "scratch.tar")
	cid := strings.TrimSpace(e.ok("create", "hello:scratch"))
	e.ok("export", "-o", exp, cid)
	names := tarNames(t, exp)
	if !contains(names, "hello") || len(filterFS(names)) != 1 {
		t.Errorf("scratch image files: %v", names)
	}
}

func contains(list []string, s string) bool {
	for _, l := range list {
		if l == s {
			return true
		}
	}
	return false
}

// filterFS drops what every container rootfs has (mount points the
// runtime makes, /etc files the engine writes).
func filterFS(names []string) []string {
	var out []string
	for _, n := range names {
		top := strings.SplitN(n, "/", 2)[0]
		switch top {
		case "dev", "proc", "sys", "etc", ".dockerenv":
			continue
		}
		out = append(out, n)
	}
	return out
}

// TestHostileImageSymlinks: COPY and ADD through symlinks an image plants
// (absolute and climbing) land inside the rootfs, never on the host.
func TestHostileImageSymlinks(t *testing.T) {
	e := newEnv(t)
	escape := filepath.Join(e.dir, "host-target")
	ctx := e.context(map[string]string{
		"a.txt": "A\n",
		"Dockerfile": `FROM busybox
RUN ln -s ` + escape + ` /abs && ln -s ../../../../../../../../` + strings.TrimPrefix(escape, "/") + ` /climb
COPY a.txt /abs/
COPY a.txt /climb/
WORKDIR /abs/wd
CMD ["sh", "-c", "cat ` + escape + `/a.txt; ls ` + escape + `"]
`,
	})
	e.mustBuild(ctx, "-t", "hostile")
	if _, err := os.Lstat(escape); !os.IsNotExist(err) {
		t.Fatalf("the build wrote on the host at %s: %v", escape, err)
	}
	got, errOut, code := e.run(nil, "run", "--rm", "hostile")
	if code != 0 || got != "A\na.txt\nwd\n" {
		t.Errorf("run: %d %q %s", code, got, errOut)
	}
}

// TestRunLeavesNoMountPoints: on an image without /proc, /dev or /sys (a
// scratch stage with a static shell) the mount points the runtime makes
// for a RUN step are not part of the image.
func TestRunLeavesNoMountPoints(t *testing.T) {
	e := newEnv(t)
	ctx := e.context(map[string]string{"Dockerfile": `FROM busybox AS b
FROM scratch
COPY --from=b /bin/busybox /bin/busybox
WORKDIR /work
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox echo made > /made"]
`})
	e.mustBuild(ctx, "-t", "nomounts")
	cid := strings.TrimSpace(e.ok("create", "nomounts", "/bin/busybox", "true"))
	exp := filepath.Join(e.dir, "nomounts.tar")
	e.ok("export", "-o", exp, cid)
	out, err := exec.Command("tar", "-tf", exp).Output()
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Fields(string(out))
	want := []string{"bin/", "bin/busybox", "made", "work/"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("image files %v, want %v", got, want)
	}
}
