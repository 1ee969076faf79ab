//go:build linux

package image_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
)

// inspectJSON is the part of Docker's `image inspect` output the tests read
// (Docker's field names).
type inspectJSON struct {
	ID           string `json:"Id"`
	RepoTags     []string
	RepoDigests  []string
	Created      string
	Architecture string
	Os           string
	Size         int64
	Config       struct {
		Cmd []string
		Env []string
	}
	RootFS struct {
		Type   string
		Layers []string
	}
}

// TestImageCommands: images, image inspect, history, tag, rmi, image prune
// and system df behave and print like Docker's.
func TestImageCommands(t *testing.T) {
	b := newBerth(t)
	bb := busybox(t)
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{Auth: "none"})
	ref := reg.Host + "/busybox:latest"
	testutil.PushLayout(t, bb.Dir, ref)
	b.ok("pull", ref)

	t.Run("images", func(t *testing.T) {
		b := b.with(t)
		out := b.ok("images")
		if h := tableHeader(out); !slices.Equal(h, []string{"REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"}) {
			t.Errorf("images header %q:\n%s", h, out)
		}
		rows := tableRows(out)
		if len(rows) != 1 || len(rows[0]) != 5 || rows[0][0] != reg.Host+"/busybox" || rows[0][1] != "latest" || rows[0][2] != shortID(bb) {
			t.Errorf("images rows %q, want %s/busybox latest %s …", rows, reg.Host, shortID(bb))
		}
		if h := tableHeader(b.ok("images", "--digests")); !slices.Equal(h, []string{"REPOSITORY", "TAG", "DIGEST", "IMAGE ID", "CREATED", "SIZE"}) {
			t.Errorf("images --digests header %q", h)
		}
		if got := lines(b.ok("images", "-q")); !slices.Equal(got, []string{shortID(bb)}) {
			t.Errorf("images -q = %q, want %s", got, shortID(bb))
		}
		if got := lines(b.ok("images", "-q", "--no-trunc")); !slices.Equal(got, []string{bb.ID().String()}) {
			t.Errorf("images -q --no-trunc = %q, want %s", got, bb.ID())
		}
		if got := lines(b.ok("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}")); !slices.Equal(got, []string{ref + " " + shortID(bb)}) {
			t.Errorf("images --format = %q", got)
		}
		if got := lines(b.ok("images", "--filter", "reference="+reg.Host+"/busybox", "-q")); len(got) != 1 {
			t.Errorf("--filter reference=…/busybox: %q, want the image", got)
		}
		if got := lines(b.ok("images", "--filter", "reference=nothing*", "-q")); len(got) != 0 {
			t.Errorf("--filter reference=nothing*: %q, want none", got)
		}
		if got := lines(b.ok("images", "--filter", "dangling=true", "-q")); len(got) != 0 {
			t.Errorf("--filter dangling=true: %q, want none", got)
		}
	})

	t.Run("inspect", func(t *testing.T) {
		b := b.with(t)
		var v []inspectJSON
		out := b.ok("image", "inspect", ref)
		if err := json.Unmarshal([]byte(out), &v); err != nil || len(v) != 1 {
			t.Fatalf("image inspect: %v, %d objects:\n%s", err, len(v), out)
		}
		got := v[0]
		var diffIDs []string
		for _, d := range bb.Config.RootFS.DiffIDs {
			diffIDs = append(diffIDs, d.String())
		}
		switch {
		case got.ID != bb.ID().String():
			t.Errorf("Id = %s, want %s", got.ID, bb.ID())
		case !slices.Equal(got.RepoTags, []string{ref}):
			t.Errorf("RepoTags = %q", got.RepoTags)
		case !slices.Equal(got.RepoDigests, []string{reg.Host + "/busybox@" + bb.Manifest.Digest.String()}):
			t.Errorf("RepoDigests = %q", got.RepoDigests)
		case got.Architecture != bb.Config.Architecture || got.Os != "linux":
			t.Errorf("platform %s/%s", got.Os, got.Architecture)
		case !slices.Equal(got.Config.Cmd, []string{"sh"}):
			t.Errorf("Config.Cmd = %q", got.Config.Cmd)
		case got.RootFS.Type != "layers" || !slices.Equal(got.RootFS.Layers, diffIDs):
			t.Errorf("RootFS = %+v, want layers %q", got.RootFS, diffIDs)
		case got.Size <= 0 || !strings.HasPrefix(got.Created, "2024-01-01T00:00:00"):
			t.Errorf("Size %d, Created %q", got.Size, got.Created)
		}
		b.fails(`no such image|not found`, "image", "inspect", "nothing:here")
	})

	t.Run("history", func(t *testing.T) {
		b := b.with(t)
		out := b.ok("history", ref)
		if h := tableHeader(out); !slices.Equal(h, []string{"IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"}) {
			t.Errorf("history header %q:\n%s", h, out)
		}
		if rows := tableRows(out); len(rows) != len(bb.Config.History) || rows[0][0] != shortID(bb) {
			t.Errorf("history rows %q, want %d with the image ID first", rows, len(bb.Config.History))
		}
		if out := b.ok("history", "--no-trunc", ref); !strings.Contains(out, bb.Config.History[0].CreatedBy) {
			t.Errorf("history --no-trunc lacks %q:\n%s", bb.Config.History[0].CreatedBy, out)
		}
	})

	t.Run("tag-rmi-prune", func(t *testing.T) {
		b := b.with(t)
		b.ok("tag", ref, "mine/box:v2")
		got := lines(b.ok("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"))
		slices.Sort(got)
		want := []string{"mine/box:v2 " + shortID(bb), ref + " " + shortID(bb)}
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("after tag: %q, want %q", got, want)
		}
		// Removing one of two names only untags.
		if out := b.ok("rmi", "mine/box:v2"); !strings.Contains(out, "Untagged: mine/box:v2") {
			t.Errorf("rmi printed %q", out)
		}
		if got := lines(b.ok("images", "-q")); len(got) != 1 {
			t.Errorf("rmi of one tag removed the image: %q", got)
		}

		// In use by a container: refused without -f.
		b.ok("create", "--name", "user-of-busybox", ref, "true")
		assertDF(t, b, "1", "1")
		b.fails(`conflict|in use|container`, "rmi", ref)
		b.ok("image", "prune", "-a", "-f")
		if got := lines(b.ok("images", "-q")); len(got) != 1 {
			t.Errorf("prune -a removed an image in use: %q", got)
		}
		b.ok("rm", "user-of-busybox")
		assertDF(t, b, "1", "0")

		out := b.ok("image", "prune", "-a", "-f")
		if !strings.Contains(out, "Total reclaimed space") {
			t.Errorf("image prune -a printed %q", out)
		}
		if got := lines(b.ok("images", "-q")); len(got) != 0 {
			t.Errorf("images after prune -a: %q", got)
		}
		if got := b.blobs(); len(got) != 0 {
			t.Errorf("blobs left after prune -a: %q", got)
		}
		assertDF(t, b, "0", "0")
		b.fails(`no such image|not found`, "rmi", ref)
	})

	t.Run("rmi-force", func(t *testing.T) {
		b := b.with(t)
		b.ok("pull", ref)
		b.ok("create", "--name", "forced", ref, "true")
		b.ok("rmi", "-f", ref)
		if got := b.ok("images", "--format", "{{.Repository}}:{{.Tag}}"); strings.Contains(got, ref) {
			t.Errorf("rmi -f left the name %s: %q", ref, got)
		}
		b.ok("rm", "forced")
		b.ok("image", "prune", "-a", "-f")
		if got := b.blobs(); len(got) != 0 {
			t.Errorf("blobs left after rmi -f, rm and prune -a: %q", got)
		}
	})
}

// assertDF checks `system df`'s columns and its Images row.
func assertDF(t *testing.T, b *berth, total, active string) {
	t.Helper()
	out := b.ok("system", "df")
	if h := tableHeader(out); !slices.Equal(h, []string{"TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"}) {
		t.Errorf("system df header %q:\n%s", h, out)
	}
	for _, row := range tableRows(out) {
		if row[0] == "Images" {
			if len(row) < 5 || row[1] != total || row[2] != active {
				t.Errorf("system df Images row %q, want total %s active %s", row, total, active)
			}
			return
		}
	}
	t.Errorf("system df has no Images row:\n%s", out)
}
