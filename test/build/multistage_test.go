//go:build linux

package build_test

import (
	"archive/tar"
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

// TestHostileSources: a stage's symlinks to a host path do not let COPY
// --from read the host file (links resolve inside the stage's rootfs,
// where the target does not exist), and a tarball that plants a symlink to
// an absolute directory and writes through it lands inside the rootfs,
// never on the host.
func TestHostileSources(t *testing.T) {
	e := newEnv(t)
	hostDir := filepath.Join(e.dir, "host-secrets")
	writeTree(t, hostDir, map[string]string{"secret": "host secret\n"})

	for _, src := range []string{"/lnk/secret", "/file"} {
		t.Run("COPY --from "+src, func(t *testing.T) {
			e := e.with(t)
			ctx := e.context(map[string]string{"Dockerfile": `FROM busybox AS evil
RUN ln -s ` + hostDir + ` /lnk && ln -s ` + hostDir + `/secret /file
FROM busybox
COPY --from=evil ` + src + ` /got
`})
			if _, out, code := e.build(ctx, "-t", "stolen"); code == 0 || !strings.Contains(out, "Dockerfile:4") || !strings.Contains(out, "not found") {
				t.Errorf("exit %d\n%s", code, out)
			}
		})
	}
	t.Run("ADD of a tarball that writes through its own symlink", func(t *testing.T) {
		e := e.with(t)
		// /tmp exists on the host and in the image: the write must land
		// in the image's.
		name := "berth-build-planted-" + filepath.Base(e.dir)
		tarPath := filepath.Join(e.dir, "evil.tar")
		f, err := os.Create(tarPath)
		if err != nil {
			t.Fatal(err)
		}
		tw := tar.NewWriter(f)
		body := "planted\n"
		for _, h := range []*tar.Header{
			{Name: "pwn", Typeflag: tar.TypeSymlink, Linkname: "/tmp", Mode: 0o777},
			{Name: "pwn/" + name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body))},
			{Name: "../../climb", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body))},
		} {
			if err := tw.WriteHeader(h); err != nil {
				t.Fatal(err)
			}
			if h.Size > 0 {
				tw.Write([]byte(body))
			}
		}
		if err := tw.Close(); err != nil {
			t.Fatal(err)
		}
		f.Close()
		t.Cleanup(func() { os.Remove("/tmp/" + name) })
		b, _ := os.ReadFile(tarPath)
		ctx := e.context(map[string]string{
			"evil.tar":   string(b),
			"Dockerfile": "FROM busybox\nADD evil.tar /x/\nCMD [\"sh\", \"-c\", \"cat /tmp/" + name + " /x/climb; readlink /x/pwn\"]\n",
		})
		e.mustBuild(ctx, "-t", "evil")
		if _, err := os.Lstat("/tmp/" + name); !os.IsNotExist(err) {
			t.Fatalf("ADD wrote on the host at /tmp/%s: %v", name, err)
		}
		if got, errOut, code := e.run(nil, "run", "--rm", "evil"); code != 0 || got != "planted\nplanted\n/tmp\n" {
			t.Errorf("run: %d %q %s", code, got, errOut)
		}
	})
}
