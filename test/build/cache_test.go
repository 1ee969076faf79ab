//go:build linux

package build_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// steps lists the progress of a plain build: step title → "CACHED" or
// "DONE".
func steps(out string) map[string]string {
	titles := map[string]string{}
	res := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		id, rest, ok := strings.Cut(l, " ")
		if !ok || !strings.HasPrefix(id, "#") {
			continue
		}
		switch {
		case strings.HasPrefix(rest, "["):
			if _, title, ok := strings.Cut(rest, "] "); ok {
				titles[id] = title
			}
		case rest == "CACHED" || strings.HasPrefix(rest, "DONE"):
			if title, ok := titles[id]; ok {
				res[title] = strings.Fields(rest)[0]
			}
		}
	}
	return res
}

func TestCache(t *testing.T) {
	e := newEnv(t)
	ctx := e.context(map[string]string{
		"Dockerfile": `FROM busybox
ARG V=1
RUN echo first-$V > /first
COPY app.txt /app/
RUN cat /app/app.txt > /second
CMD ["cat", "/second"]
`,
		"app.txt": "version one\n",
	})
	id1, _ := e.mustBuild(ctx, "-t", "cached")

	t.Run("rebuild is fully cached and gives the same image", func(t *testing.T) {
		e := e.with(t)
		id, out := e.mustBuild(ctx, "-t", "cached")
		for title, res := range steps(out) {
			if res != "CACHED" && !strings.HasPrefix(title, "FROM") {
				t.Errorf("%s: %s, want CACHED", title, res)
			}
		}
		if id != id1 {
			t.Errorf("image ID changed on a cached rebuild: %s -> %s", id1, id)
		}
	})
	t.Run("touching a file keeps the cache", func(t *testing.T) {
		e := e.with(t)
		future := time.Now().Add(time.Hour)
		if err := os.Chtimes(filepath.Join(ctx, "app.txt"), future, future); err != nil {
			t.Fatal(err)
		}
		id, out := e.mustBuild(ctx, "-t", "cached")
		if id != id1 {
			t.Errorf("mtime change rebuilt the image:\n%s", out)
		}
	})
	t.Run("changing content reruns from the COPY", func(t *testing.T) {
		e := e.with(t)
		if err := os.WriteFile(filepath.Join(ctx, "app.txt"), []byte("version two\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, out := e.mustBuild(ctx, "-t", "cached")
		st := steps(out)
		want := map[string]string{
			"RUN echo first-$V > /first":     "CACHED",
			"COPY app.txt /app/":             "DONE",
			"RUN cat /app/app.txt > /second": "DONE",
		}
		for title, res := range want {
			if st[title] != res {
				t.Errorf("%s: %q, want %s\n%s", title, st[title], res, out)
			}
		}
		if got, _, _ := e.run(nil, "run", "--rm", "cached"); got != "version two\n" {
			t.Errorf("run = %q", got)
		}
	})
	t.Run("a build arg in scope invalidates", func(t *testing.T) {
		e := e.with(t)
		_, out := e.mustBuild(ctx, "--build-arg", "V=2")
		if st := steps(out); st["RUN echo first-$V > /first"] != "DONE" {
			t.Errorf("RUN with a changed arg was cached:\n%s", out)
		}
	})
	t.Run("--no-cache", func(t *testing.T) {
		e := e.with(t)
		_, out := e.mustBuild(ctx, "--no-cache")
		if strings.Contains(out, "CACHED") {
			t.Errorf("--no-cache used the cache:\n%s", out)
		}
	})
	t.Run("a filtered system prune leaves the cache", func(t *testing.T) {
		e := e.with(t)
		// The cache keeps no labels or use times: a filter cannot
		// pick entries, so none go.
		e.ok("system", "prune", "-f", "--filter", "label=nobody")
		if _, out := e.mustBuild(ctx); !strings.Contains(out, "CACHED") {
			t.Errorf("build after system prune --filter was not cached:\n%s", out)
		}
	})
	t.Run("builder prune empties the cache", func(t *testing.T) {
		e := e.with(t)
		e.ok("builder", "prune", "-f")
		if _, err := os.Stat(filepath.Join(e.root, "build-cache", "index")); !os.IsNotExist(err) {
			t.Errorf("cache index still there: %v", err)
		}
		_, out := e.mustBuild(ctx)
		if strings.Contains(out, "CACHED") {
			t.Errorf("build after prune used the cache:\n%s", out)
		}
		// The tagged image survived the prune.
		if got, _, code := e.run(nil, "run", "--rm", "cached"); code != 0 || got != "version two\n" {
			t.Errorf("run after prune: %d %q", code, got)
		}
	})
}

// TestParallelStages: two independent stages that each take a second
// finish together in well under two seconds.
func TestParallelStages(t *testing.T) {
	e := newEnv(t)
	ctx := e.context(map[string]string{"Dockerfile": `FROM busybox AS a
RUN sleep 1 && echo a > /a
FROM busybox AS b
RUN sleep 1 && echo b > /b
FROM busybox
COPY --from=a /a /a
COPY --from=b /b /b
CMD ["cat", "/a", "/b"]
`})
	start := time.Now()
	e.mustBuild(ctx, "-t", "par")
	if d := time.Since(start); d > 1900*time.Millisecond {
		t.Errorf("build took %v: the stages did not run in parallel", d)
	}
	if got, _, _ := e.run(nil, "run", "--rm", "par"); got != "a\nb\n" {
		t.Errorf("run = %q", got)
	}
}

// TestRWBindDiscardsWrites: RUN --mount=type=bind,rw lets the step write
// to the mount, and nothing reaches the context.
func TestRWBindDiscardsWrites(t *testing.T) {
	e := newEnv(t)
	ctx := e.context(map[string]string{
		"src/a.txt":  "a\n",
		"Dockerfile": "FROM busybox\nRUN --mount=type=bind,source=src,target=/src,rw echo changed > /src/a.txt && touch /src/new && cat /src/a.txt > /seen\nCMD [\"cat\", \"/seen\"]\n",
	})
	e.mustBuild(ctx, "-t", "rwbind")
	if got, _, _ := e.run(nil, "run", "--rm", "rwbind"); got != "changed\n" {
		t.Errorf("the step did not see its write: %q", got)
	}
	if b, _ := os.ReadFile(filepath.Join(ctx, "src", "a.txt")); string(b) != "a\n" {
		t.Errorf("the context file changed: %q", b)
	}
	if _, err := os.Stat(filepath.Join(ctx, "src", "new")); !os.IsNotExist(err) {
		t.Errorf("a file appeared in the context: %v", err)
	}
}

// TestBindMountKeysTheCache: a RUN step is reused only while the context
// files it bind-mounts are unchanged.
func TestBindMountKeysTheCache(t *testing.T) {
	e := newEnv(t)
	ctx := e.context(map[string]string{
		"b.txt":      "one\n",
		"Dockerfile": "FROM busybox\nRUN --mount=type=bind,source=b.txt,target=/b cat /b > /bout\nCMD [\"cat\", \"/bout\"]\n",
	})
	e.mustBuild(ctx, "-t", "bind")
	_, out := e.mustBuild(ctx, "-t", "bind")
	if !strings.Contains(out, "CACHED") {
		t.Errorf("unchanged rebuild not cached:\n%s", out)
	}
	if err := os.WriteFile(filepath.Join(ctx, "b.txt"), []byte("two\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, out = e.mustBuild(ctx, "-t", "bind")
	if strings.Contains(out, "CACHED") {
		t.Errorf("changed bind source still cached:\n%s", out)
	}
	if got, _, _ := e.run(nil, "run", "--rm", "bind"); got != "two\n" {
		t.Errorf("run = %q", got)
	}
}

// TestAddURL: ADD fetches http(s) URLs (here from a server on loopback),
// keeps them as files (mode 0600, not extracted) and reuses the cache while
// the content is unchanged.
func TestAddURL(t *testing.T) {
	e := newEnv(t)
	body := "remote v1\n"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, body)
	}))
	defer srv.Close()
	ctx := e.context(map[string]string{
		"Dockerfile": "FROM busybox\nADD " + srv.URL + "/files/remote.txt /dl/\nCMD [\"sh\", \"-c\", \"cat /dl/remote.txt; stat -c %a /dl/remote.txt\"]\n",
	})
	e.mustBuild(ctx, "-t", "addurl")
	if got, _, _ := e.run(nil, "run", "--rm", "addurl"); got != "remote v1\n600\n" {
		t.Errorf("run = %q", got)
	}
	if _, out := e.mustBuild(ctx, "-t", "addurl"); !strings.Contains(out, "CACHED") {
		t.Errorf("unchanged URL not cached:\n%s", out)
	}
	body = "remote v2\n"
	if _, out := e.mustBuild(ctx, "-t", "addurl"); strings.Contains(out, "CACHED") {
		t.Errorf("changed URL content cached:\n%s", out)
	}
}

// TestCacheMountPersists: a RUN --mount=type=cache directory outlives the
// step and the build (the next build, even with --no-cache, sees what the
// last one left), is never part of the image, and `builder prune` empties
// it.
func TestCacheMountPersists(t *testing.T) {
	e := newEnv(t)
	ctx := e.context(map[string]string{"Dockerfile": `FROM busybox
RUN --mount=type=cache,target=/var/cache/app echo run >> /var/cache/app/log && wc -l < /var/cache/app/log > /runs
CMD ["sh", "-c", "cat /runs; ls /var/cache/app 2>/dev/null | wc -l"]
`})
	for i, want := range []string{"1\n0\n", "2\n0\n"} {
		e.mustBuild(ctx, "--no-cache", "-t", "cachemount")
		if got, _, _ := e.run(nil, "run", "--rm", "cachemount"); got != want {
			t.Errorf("build %d: run = %q, want %q", i+1, got, want)
		}
	}
	e.ok("builder", "prune", "-f")
	e.mustBuild(ctx, "-t", "cachemount")
	if got, _, _ := e.run(nil, "run", "--rm", "cachemount"); got != "1\n0\n" {
		t.Errorf("after prune: run = %q, want the cache mount empty again", got)
	}
}

// TestCopyLink: COPY --link makes a layer that does not depend on the
// steps before it: after an earlier step changes, the same layer (same
// diff ID) is stacked on the new parent. The files, owners and modes are
// as without --link, and the destination is not resolved through the
// previous state's symlinks (a layer made on an empty directory).
func TestCopyLink(t *testing.T) {
	e := newEnv(t)
	ctx := e.context(map[string]string{
		"Dockerfile": `FROM busybox
ARG V=1
RUN echo $V > /v && ln -s /tmp /lnkdir
COPY --link --chown=1000:100 --chmod=0640 app/ /opt/app/
COPY --link one.txt /lnkdir/
RUN cat /opt/app/a.txt > /seen
CMD ["sh", "-c", "cat /v /seen /lnkdir/one.txt; stat -c '%u:%g %a' /opt/app/a.txt; ls /tmp | wc -l; test -d /lnkdir && test ! -L /lnkdir && echo dir"]
`,
		"app/a.txt": "a\n",
		"one.txt":   "one\n",
	})
	layers := map[string][]string{}
	for _, v := range []string{"1", "2"} {
		tag := "link:" + v
		_, out := e.mustBuild(ctx, "-t", tag, "--build-arg", "V="+v)
		if v == "2" && strings.Count(out, "reusing the linked layer") != 2 {
			t.Errorf("the linked layers were made again after an earlier step changed:\n%s", out)
		}
		want := v + "\na\none\n1000:100 640\n0\ndir\n"
		if got, errOut, code := e.run(nil, "run", "--rm", tag); code != 0 || got != want {
			t.Errorf("V=%s: run = %d %q, want %q %s", v, code, got, want, errOut)
		}
		layers[v] = e.inspect(tag).RootFS.Layers
	}
	// --no-cache makes the linked layers again too.
	if _, out := e.mustBuild(ctx, "--no-cache", "--build-arg", "V=2"); strings.Contains(out, "reusing the linked layer") {
		t.Errorf("--no-cache reused a linked layer:\n%s", out)
	}
	l1, l2 := layers["1"], layers["2"]
	if len(l1) != len(l2) || len(l1) < 5 {
		t.Fatalf("layers %v and %v", l1, l2)
	}
	n := len(l1)
	// base..., RUN (V), COPY --link, COPY --link, RUN.
	if l1[n-4] == l2[n-4] {
		t.Errorf("the RUN that depends on V kept its layer")
	}
	for _, i := range []int{n - 3, n - 2} {
		if l1[i] != l2[i] {
			t.Errorf("layer %d (COPY --link) changed with its parent: %s -> %s", i, l1[i], l2[i])
		}
	}
}

// TestCopyFromKeepsOwners: COPY --from keeps the source files' owners
// (without --chown; the destination directory it makes is root's), and a change of owner alone in the source stage
// reruns the COPY rather than reusing a layer with the old owners.
func TestCopyFromKeepsOwners(t *testing.T) {
	e := newEnv(t)
	ctx := e.context(map[string]string{"Dockerfile": `FROM busybox AS src
ARG OWNER
RUN mkdir /d && echo x > /d/f && chown -R $OWNER /d
FROM busybox
COPY --from=src /d /d
COPY --from=src --chown=7:7 /d/f /chowned
CMD ["stat", "-c", "%n %u:%g", "/d", "/d/f", "/chowned"]
`})
	for _, o := range []string{"1:1", "2:3"} {
		e.mustBuild(ctx, "-t", "owners", "--build-arg", "OWNER="+o)
		// /d is made for the directory's content: root's, as with
		// docker build; the content keeps its owners.
		want := "/d 0:0\n/d/f " + o + "\n/chowned 7:7\n"
		if got, errOut, code := e.run(nil, "run", "--rm", "owners"); code != 0 || got != want {
			t.Errorf("OWNER=%s: run = %d %q, want %q %s", o, code, got, want, errOut)
		}
	}
}
