//go:build linux

package image_test

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
)

// TestPullRunBusybox: skopeo pushes the busybox image to a registry without
// auth; berth pulls it by tag and by digest and runs it.
func TestPullRunBusybox(t *testing.T) {
	b := newBerth(t)
	bb := busybox(t)
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{Auth: "none"})
	ref := reg.Host + "/test/busybox:1.0"
	testutil.PushLayout(t, bb.Dir, ref)

	if got := strings.TrimSpace(b.ok("pull", "-q", ref)); got != ref {
		t.Errorf("pull -q printed %q, want %q", got, ref)
	}
	if got := b.ok("run", "--rm", ref, "echo", "hello from busybox"); got != "hello from busybox\n" {
		t.Errorf("run printed %q", got)
	}
	if got := b.blobs(); !slices.Equal(got, imageBlobs(bb)) {
		t.Errorf("content store holds %v, want exactly the image's blobs %v", got, imageBlobs(bb))
	}

	byDigest := reg.Host + "/test/busybox@" + bb.Manifest.Digest.String()
	b.ok("pull", byDigest)
	// The same image by digest: nothing new stored.
	if got := b.blobs(); !slices.Equal(got, imageBlobs(bb)) {
		t.Errorf("after pull by digest the store holds %v, want %v", got, imageBlobs(bb))
	}
	if got := b.ok("run", "--rm", byDigest, "cat", "/etc/hostname"); strings.TrimSpace(got) == "" {
		t.Errorf("run by digest printed nothing")
	}
	out := b.ok("images", "--digests", "--no-trunc")
	if !strings.Contains(out, bb.Manifest.Digest.String()) || !strings.Contains(out, bb.ID().String()) {
		t.Errorf("images --digests --no-trunc lacks digest %s or ID %s:\n%s", bb.Manifest.Digest, bb.ID(), out)
	}
	// Unknown tag: a clear error, nothing changes.
	b.fails(`not found|manifest unknown|unknown`, "pull", reg.Host+"/test/busybox:nope")
	b.fails(`not found|manifest unknown|unknown|name`, "pull", reg.Host+"/test/nothing:1")
}

// TestPullAuth: basic and token auth, credentials through login (with -p and
// --password-stdin), stored Docker's way, removed by logout.
func TestPullAuth(t *testing.T) {
	for _, auth := range []string{"basic", "token"} {
		t.Run(auth, func(t *testing.T) {
			b := newBerth(t)
			bb := busybox(t)
			reg := testutil.StartRegistry(t, testutil.RegistryOptions{Auth: auth})
			ref := reg.Host + "/private/busybox:latest"
			testutil.PushLayoutAs(t, bb.Dir, ref, reg.User, reg.Password)

			b.fails(`auth|denied|unauthorized|credentials`, "pull", ref)
			b.fails(`auth|denied|unauthorized|incorrect|invalid`, "login", "-u", reg.User, "-p", "wrong-"+reg.Password, reg.Host)

			if auth == "basic" {
				b.ok("login", "-u", reg.User, "-p", reg.Password, reg.Host)
			} else {
				r := b.runIn(reg.Password+"\n", "login", "-u", reg.User, "--password-stdin", reg.Host)
				if r.code != 0 || !strings.Contains(r.stdout, "Login Succeeded") {
					t.Fatalf("login --password-stdin: %s", r)
				}
			}
			var cfg struct {
				Auths map[string]struct{ Auth string } `json:"auths"`
			}
			data, err := os.ReadFile(filepath.Join(b.dockerConfig, "config.json"))
			if err != nil {
				t.Fatalf("login did not write $DOCKER_CONFIG/config.json: %v", err)
			}
			if err := json.Unmarshal(data, &cfg); err != nil {
				t.Fatal(err)
			}
			if got, want := cfg.Auths[reg.Host].Auth, base64.StdEncoding.EncodeToString([]byte(reg.User+":"+reg.Password)); got != want {
				t.Errorf("config.json auths[%s].auth = %q, want %q (%s)", reg.Host, got, want, data)
			}

			b.ok("pull", ref)
			if got := b.ok("run", "--rm", ref, "echo", "ok"); got != "ok\n" {
				t.Errorf("run printed %q", got)
			}
			if auth == "token" && reg.TokenRequests != nil && reg.TokenRequests() == 0 {
				t.Errorf("the pull asked the token server for nothing")
			}
			// berth push with the stored credentials.
			pushed := reg.Host + "/private/pushed:v1"
			b.ok("tag", ref, pushed)
			b.ok("push", pushed)

			b.ok("logout", reg.Host)
			data, _ = os.ReadFile(filepath.Join(b.dockerConfig, "config.json"))
			if strings.Contains(string(data), reg.Host) {
				t.Errorf("config.json still names %s after logout:\n%s", reg.Host, data)
			}
			// A pull resolves the tag at the registry even when the image is
			// present: without credentials that fails again.
			b.fails(`auth|denied|unauthorized|credentials`, "pull", pushed)
		})
	}
}

// TestPullDebianWhiteouts: the multi-layer Debian image runs, and the top
// layer's whiteouts and opaque directory hide what lower layers hold.
func TestPullDebianWhiteouts(t *testing.T) {
	b := newBerth(t)
	deb := debian(t)
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{Auth: "none"})
	ref := reg.Host + "/debian:bookworm"
	testutil.PushLayout(t, deb.Dir, ref)
	b.ok("pull", ref)

	rootfs, err := testutil.DebianRootfs()
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(rootfs, "etc/debian_version"))
	if err != nil {
		t.Fatal(err)
	}
	if got := b.ok("run", "--rm", ref, "cat", "/etc/debian_version"); got != string(want) {
		t.Errorf("/etc/debian_version = %q, want %q", got, want)
	}
	script := `for p in "$@"; do if [ -e "$p" ]; then echo "present $p"; else echo "gone $p"; fi; done; ls -A ` + testutil.DebianOpaqueDir + `; cat ` + testutil.DebianTopFile
	args := append([]string{"run", "--rm", ref, "sh", "-c", script, "sh"}, testutil.DebianDeleted...)
	got := lines(b.ok(args...))
	var wantLines []string
	for _, p := range testutil.DebianDeleted {
		wantLines = append(wantLines, "gone "+p)
	}
	wantLines = append(wantLines, testutil.DebianOpaqueFile, "top")
	if !slices.Equal(got, wantLines) {
		t.Errorf("inside the container:\n%q\nwant\n%q", got, wantLines)
	}
	// The whiteout of /usr/share/doc hides that directory only: its
	// siblings from the lower layer are still there.
	if out := b.ok("run", "--rm", ref, "ls", "/usr/share"); !strings.Contains(out, "common-licenses") {
		t.Errorf("/usr/share lost more than doc:\n%s", out)
	}
}

// TestConcurrentPulls: two pulls of the same image into one store at once
// both succeed, and each blob is downloaded once.
func TestConcurrentPulls(t *testing.T) {
	b := newBerth(t)
	deb := debian(t)
	srv := serveLayouts(t, map[string]*testutil.ImageLayout{"debian": deb})
	// Slow enough that the two pulls overlap.
	srv.rate.Store(100 << 20)
	ref := srv.Host + "/debian:" + testutil.LayoutTag

	var wg sync.WaitGroup
	results := make([]result, 2)
	for i := range results {
		wg.Go(func() { results[i] = b.run("pull", ref) })
	}
	wg.Wait()
	for _, r := range results {
		if r.code != 0 {
			t.Errorf("concurrent pull failed: %s", r)
		}
	}
	for _, l := range deb.Layers {
		if n := srv.fetchCount(l.Digest); n != 1 {
			t.Errorf("layer %s downloaded %d times, want once", l.Digest, n)
		}
	}
	if got := b.blobs(); !slices.Equal(got, imageBlobs(deb)) {
		t.Errorf("store holds %v, want %v", got, imageBlobs(deb))
	}
	if ids := lines(b.ok("images", "-q")); len(ids) != 1 {
		t.Errorf("images -q = %q, want one image", ids)
	}
	b.ok("run", "--rm", ref, "cat", "/etc/debian_version")
}

// TestKillPullThenPullAgain: kill -9 of a pull in the middle of its
// downloads leaves a store that the next pull completes, and that garbage
// collection leaves clean (no partial blobs).
func TestKillPullThenPullAgain(t *testing.T) {
	b := newBerth(t)
	deb := debian(t)
	srv := serveLayouts(t, map[string]*testutil.ImageLayout{"debian": deb})
	srv.rate.Store(8 << 20) // the 88 MB layer takes ~11 s
	ref := srv.Host + "/debian:" + testutil.LayoutTag

	cmd := b.command(t.Context(), "pull", ref)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// Wait until some bytes sit in the store (downloads under way).
	deadline := time.Now().Add(30 * time.Second)
	for dirSize(filepath.Join(b.root, "content")) < 4<<20 {
		select {
		case err := <-done:
			t.Fatalf("pull ended before it could be killed (%v)", err)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("the pull stored nothing in 30 s")
		}
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-done
	t.Logf("killed the pull with %d bytes in the content store, ingests %q", dirSize(filepath.Join(b.root, "content")), b.ingests())

	srv.rate.Store(0)
	b.ok("pull", ref)
	b.ok("run", "--rm", ref, "cat", "/etc/debian_version")
	b.ok("image", "prune", "-f")
	if got := b.blobs(); !slices.Equal(got, imageBlobs(deb)) {
		t.Errorf("after pull and prune the store holds %v, want %v", got, imageBlobs(deb))
	}
	if ing := b.ingests(); len(ing) != 0 {
		t.Errorf("ingests left after pull and prune: %q", ing)
	}
	if ms := mounts(b.root); len(ms) != 0 {
		t.Errorf("mounts left under the store: %q", ms)
	}
	// A second prune finds nothing more: the first left a clean store.
	before := b.storeFiles()
	b.ok("image", "prune", "-f")
	if after := b.storeFiles(); !slices.Equal(before, after) {
		t.Errorf("second prune changed the store: %d paths before, %d after", len(before), len(after))
	}
}

// dirSize sums the sizes of regular files under dir.
func dirSize(dir string) int64 {
	var n int64
	_ = filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return nil
	})
	return n
}
