//go:build linux

package build_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestErrors: a failing build names the Dockerfile line, records no image
// and leaves nothing running or mounted.
func TestErrors(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name       string
		dockerfile string
		files      map[string]string
		args       []string
		want       []string // substrings of the output
	}{
		{
			name:       "unknown instruction",
			dockerfile: "FROM busybox\nFROBNICATE x\n",
			want:       []string{"Dockerfile:2", "unknown instruction"},
		},
		{
			name:       "missing copy source",
			dockerfile: "FROM busybox\nRUN true\nCOPY nope.txt /\n",
			want:       []string{"Dockerfile:3", "nope.txt", "not found"},
		},
		{
			name:       "failing run shows output and exit code",
			dockerfile: "FROM busybox\nRUN echo about to fail && exit 7\n",
			want:       []string{"Dockerfile:2", "about to fail", "exit code: 7"},
		},
		{
			name:       "copy source excluded by dockerignore",
			dockerfile: "FROM busybox\nCOPY secret.key /\n",
			files:      map[string]string{"secret.key": "k", ".dockerignore": "*.key\n"},
			want:       []string{"Dockerfile:2", "secret.key"},
		},
		{
			name:       "symlink out of the context is not followed out",
			dockerfile: "FROM busybox\nCOPY hostpasswd/passwd /stolen\n",
			files:      map[string]string{"hostpasswd": "->/etc"},
			want:       []string{"Dockerfile:2", "not found"},
		},
		{
			name:       "copy from a missing stage or image",
			dockerfile: "FROM busybox\nCOPY --from=nosuchimage /x /x\n",
			want:       []string{"Dockerfile:2"},
		},
		{
			name:       "unknown target",
			dockerfile: "FROM busybox AS a\n",
			args:       []string{"--target", "b"},
			want:       []string{"target stage", "could not be found"},
		},
		{
			name:       "foreign platform",
			dockerfile: "FROM busybox\n",
			args:       []string{"--platform", "linux/s390x"},
			want:       []string{"linux/s390x", "host platform"},
		},
		{
			name:       "ssh mounts",
			dockerfile: "FROM busybox\nRUN --mount=type=ssh true\n",
			want:       []string{"Dockerfile:2", "not supported"},
		},
		{
			name:       "missing required secret",
			dockerfile: "FROM busybox\nRUN --mount=type=secret,id=x,required=true cat /run/secrets/x\n",
			want:       []string{"Dockerfile:2", "secret x"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := e.with(t)
			before := e.ok("images", "-q", "--no-trunc")
			files := map[string]string{"Dockerfile": tc.dockerfile}
			for k, v := range tc.files {
				files[k] = v
			}
			ctx := e.context(files)
			// A stale ID from an earlier build goes, as with docker build.
			if err := os.WriteFile(filepath.Join(e.dir, "iid"), []byte("sha256:stale"), 0o644); err != nil {
				t.Fatal(err)
			}
			_, out, code := e.run(nil, append(append([]string{"build", "--progress", "plain", "--iidfile", filepath.Join(e.dir, "iid"), "-t", "broken"}, tc.args...), ctx)...)
			if code == 0 {
				t.Fatalf("build succeeded:\n%s", out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			if _, err := os.Stat(filepath.Join(e.dir, "iid")); !os.IsNotExist(err) {
				t.Errorf("a failed build left an --iidfile: %v", err)
			}
			if after := e.ok("images", "-q", "--no-trunc"); after != before {
				t.Errorf("a failed build changed the images:\nbefore %s\nafter %s", before, after)
			}
			if m := mountsUnder(e.dir); len(m) > 0 {
				t.Errorf("mounts left: %v", m)
			}
			if ents, _ := os.ReadDir(filepath.Join(e.state, "runtime")); len(ents) > 0 {
				t.Errorf("runtime state left: %v", ents)
			}
			if ents, _ := os.ReadDir(filepath.Join(e.root, "build-cache", "tmp")); len(ents) > 0 {
				t.Errorf("temporary files left: %v", ents)
			}
		})
	}
}

// TestContextForms: a directory, a tarball file, a tar on stdin, a
// Dockerfile on stdin, -f outside the context and -f -, plus -q, -t twice
// and --label.
func TestContextForms(t *testing.T) {
	e := newEnv(t)
	df := "FROM busybox\nCOPY data.txt /data.txt\nCMD [\"cat\", \"/data.txt\"]\n"
	ctx := e.context(map[string]string{"Dockerfile": df, "data.txt": "ctx data\n", "other.Dockerfile": "FROM busybox\nCMD [\"echo\", \"other\"]\n"})
	ctxTar := filepath.Join(e.dir, "ctx.tar")
	if err := tarDir(ctx, ctxTar); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(e.dir, "outside.Dockerfile")
	os.WriteFile(outside, []byte("FROM busybox\nCOPY data.txt /d\nCMD [\"cat\", \"/d\"]\n"), 0o644)

	t.Run("directory, -q, two tags, label", func(t *testing.T) {
		e := e.with(t)
		out := e.ok("build", "-q", "-t", "one:a", "-t", "two:b", "--label", "built.by=berth", ctx)
		id := strings.TrimSpace(out)
		if !strings.HasPrefix(id, "sha256:") || strings.Count(out, "\n") != 1 {
			t.Errorf("-q printed %q", out)
		}
		for _, tag := range []string{"one:a", "two:b"} {
			if c := e.inspect(tag); c.ID != id || c.Config.Labels["built.by"] != "berth" {
				t.Errorf("%s: id %s labels %v", tag, c.ID, c.Config.Labels)
			}
		}
	})
	t.Run("tarball file", func(t *testing.T) {
		e := e.with(t)
		e.mustBuild(ctxTar, "-t", "fromtar")
		if got, _, _ := e.run(nil, "run", "--rm", "fromtar"); got != "ctx data\n" {
			t.Errorf("run = %q", got)
		}
	})
	t.Run("tar on stdin", func(t *testing.T) {
		e := e.with(t)
		b, _ := os.ReadFile(ctxTar)
		if _, errOut, code := e.run(bytes.NewReader(b), "build", "-q", "-t", "stdintar", "-"); code != 0 {
			t.Fatalf("build -: %s", errOut)
		}
		if got, _, _ := e.run(nil, "run", "--rm", "stdintar"); got != "ctx data\n" {
			t.Errorf("run = %q", got)
		}
	})
	t.Run("dockerfile on stdin without context", func(t *testing.T) {
		e := e.with(t)
		if _, errOut, code := e.run(strings.NewReader("FROM busybox\nRUN echo hi > /hi\n"), "build", "-q", "-t", "stdindf", "-"); code != 0 {
			t.Fatalf("build -: %s", errOut)
		}
		if _, errOut, code := e.run(strings.NewReader("FROM busybox\nCOPY x /\n"), "build", "-q", "-"); code == 0 || !strings.Contains(errOut, "context") {
			t.Errorf("COPY without a context: exit %d, %s", code, errOut)
		}
	})
	t.Run("--progress quiet, auto, plain and a bad mode", func(t *testing.T) {
		e := e.with(t)
		if out, errOut, code := e.run(nil, "build", "--progress", "quiet", "-t", "quietly", ctx); code != 0 || out != "" || errOut != "" {
			t.Errorf("--progress quiet: exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		// auto without a terminal is plain: BuildKit's "#N" lines on
		// stderr, nothing on stdout.
		for _, mode := range []string{"auto", "plain"} {
			out, errOut, code := e.run(nil, "build", "--progress", mode, "-t", "quietly", ctx)
			if code != 0 || out != "" || !strings.Contains(errOut, "#1 [stage-0 1/3] FROM busybox") || !strings.Contains(errOut, "CACHED") {
				t.Errorf("--progress %s: exit %d, stdout %q, stderr %q", mode, code, out, errOut)
			}
		}
		if _, errOut, code := e.run(nil, "build", "--progress", "fancy", ctx); code == 0 || !strings.Contains(errOut, "progress") {
			t.Errorf("--progress fancy: exit %d, %s", code, errOut)
		}
		if got, _, _ := e.run(nil, "run", "--rm", "quietly"); got != "ctx data\n" {
			t.Errorf("run = %q", got)
		}
	})
	t.Run("-f outside the context, inside it, and -", func(t *testing.T) {
		e := e.with(t)
		e.mustBuild(ctx, "-t", "outside", "-f", outside)
		if got, _, _ := e.run(nil, "run", "--rm", "outside"); got != "ctx data\n" {
			t.Errorf("run = %q", got)
		}
		e.mustBuild(ctx, "-t", "inside", "-f", filepath.Join(ctx, "other.Dockerfile"))
		if got, _, _ := e.run(nil, "run", "--rm", "inside"); got != "other\n" {
			t.Errorf("run = %q", got)
		}
		if _, errOut, code := e.run(strings.NewReader(df), "build", "-q", "-t", "dfstdin", "-f", "-", ctx); code != 0 {
			t.Fatalf("build -f -: %s", errOut)
		}
	})
}

// TestDockerfileDockerignore: NAME.dockerignore beside the Dockerfile wins
// over the context's .dockerignore, for a Dockerfile in a subdirectory of
// the context and for one outside it (BuildKit's rule); without one the
// context's .dockerignore applies.
func TestDockerfileDockerignore(t *testing.T) {
	e := newEnv(t)
	df := "FROM busybox\nCOPY . /c/\nCMD [\"sh\", \"-c\", \"cd /c && find . -type f | sort | tr '\\\\n' ' '\"]\n"
	ctx := e.context(map[string]string{
		"secret.txt": "s", "pub.txt": "p", "notes.md": "n",
		".dockerignore":                   "*.md\nsub\n",
		"sub/app.Dockerfile":              df,
		"sub/app.Dockerfile.dockerignore": "secret.txt\nsub\n",
		// Same name as the outside Dockerfile, but in the context: not
		// that Dockerfile's ignore file.
		"out.Dockerfile.dockerignore": "pub.txt\n",
	})
	outside := filepath.Join(e.dir, "elsewhere")
	writeTree(t, outside, map[string]string{
		"out.Dockerfile": df, "out.Dockerfile.dockerignore": "pub.txt\nsub\n*.dockerignore\n",
		"plain.Dockerfile": df,
	})
	cases := []struct {
		name, file, want string
	}{
		{"beside, in the context", filepath.Join(ctx, "sub", "app.Dockerfile"), "./.dockerignore ./notes.md ./out.Dockerfile.dockerignore ./pub.txt "},
		{"beside, outside the context", filepath.Join(outside, "out.Dockerfile"), "./notes.md ./secret.txt "},
		{"outside without its own", filepath.Join(outside, "plain.Dockerfile"), "./.dockerignore ./out.Dockerfile.dockerignore ./pub.txt ./secret.txt "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := e.with(t)
			tag := "ign:" + strings.ReplaceAll(tc.name, " ", "-")
			tag = strings.NewReplacer(",", "").Replace(tag)
			e.mustBuild(ctx, "-t", tag, "-f", tc.file)
			if got, errOut, code := e.run(nil, "run", "--rm", tag); code != 0 || got != tc.want {
				t.Errorf("files in the image: exit %d %q, want %q %s", code, got, tc.want, errOut)
			}
		})
	}
}

// TestKilledBuildIsReclaimed: a build killed with SIGKILL in the middle of
// a RUN step leaves its rootfs mounted; the next build unmounts and removes
// it.
func TestKilledBuildIsReclaimed(t *testing.T) {
	e := newEnv(t)
	tmp := filepath.Join(e.root, "build-cache", "tmp")
	ctx := e.context(map[string]string{"Dockerfile": "FROM busybox\nRUN sleep 2\n"})
	c := e.cmd("build", "-q", ctx)
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(mountsUnder(tmp)) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	c.Process.Kill()
	c.Wait()
	if len(mountsUnder(tmp)) == 0 {
		t.Fatal("the build never mounted its rootfs under build-cache/tmp")
	}
	e.mustBuild(e.context(map[string]string{"Dockerfile": "FROM busybox\nRUN true\n"}))
	if m := mountsUnder(tmp); len(m) > 0 {
		t.Errorf("the killed build's mounts are still there: %v", m)
	}
	if ents, _ := os.ReadDir(tmp); len(ents) > 0 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("left in build-cache/tmp: %v", names)
	}
}
