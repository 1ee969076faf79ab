//go:build linux

package image_test

import (
	"crypto/sha256"
	"errors"
	"io/fs"
	"os"
	"regexp"
	"slices"
	"strconv"
	"syscall"
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
)

// maxLayerSize is the unpack limit the hostile tests give berth
// (BERTH_MAX_LAYER_SIZE): far above any honest test layer, far below the
// gzip bomb.
const maxLayerSize = 256 << 20

// hostileMessages: what the error must talk about, per hostile image.
var hostileMessages = map[string]string{
	"traversal":    `escape|outside|invalid|\.\.|breakout|path`,
	"symlink":      `escape|outside|symlink|invalid|path`,
	"hardlink":     `escape|outside|link|invalid|path`,
	"hardlink-abs": `escape|outside|link|invalid|path|not exist|no such`,
	"gzip-bomb":    `limit|exceed|too large|size|maximum`,
	"wrong-digest": `digest`,
	"truncated":    `size|digest|short|EOF|unexpected|truncated|length`,
}

// TestHostileImages: each crafted image is refused with a clear message (or
// its escape is contained in the image's own filesystem), the host is
// untouched, and the store is as it was: `images` unchanged, and after
// `image prune` the same files as before the attempt (no orphan snapshot,
// blob or ingest).
func TestHostileImages(t *testing.T) {
	testutil.RequiresRoot(t)
	his, err := testutil.HostileImages()
	if err != nil {
		t.Fatal(err)
	}
	bb := busybox(t)
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{Auth: "none"})
	raw := map[string]*testutil.ImageLayout{}
	for _, hi := range his {
		if hi.Raw {
			raw["hostile/"+hi.Name] = hi.Layout
		}
	}
	srv := serveLayouts(t, raw)
	baseRef := reg.Host + "/busybox:base"
	testutil.PushLayout(t, bb.Dir, baseRef)

	for _, hi := range his {
		t.Run(hi.Name, func(t *testing.T) {
			b := newBerth(t)
			b.env = append(b.env, "BERTH_MAX_LAYER_SIZE="+strconv.Itoa(maxLayerSize))
			b.ok("pull", "-q", baseRef)
			// A container has run (a contained escape runs one too), so
			// both listings below include whatever that creates.
			b.ok("run", "--rm", baseRef, "true")
			b.ok("image", "prune", "-f")
			images := b.ok("images", "--no-trunc")
			files := b.storeFiles()
			for _, p := range hi.HostPaths {
				if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
					t.Fatal(err)
				}
			}
			passwd := fileIdentity(t, "/etc/passwd")

			ref := reg.Host + "/hostile/" + hi.Name + ":latest"
			if hi.Raw {
				ref = srv.Host + "/hostile/" + hi.Name + ":" + testutil.LayoutTag
			} else {
				testutil.PushLayout(t, hi.Layout.Dir, ref)
			}
			r := b.run("pull", ref)
			if r.code == 0 {
				// Unpacking may wait for the first container.
				r = b.run("run", "--rm", ref, "ls", "-la", "/", "/tmp")
			}
			rejected := r.code != 0
			switch {
			case rejected:
				if !regexp.MustCompile("(?i)" + hostileMessages[hi.Name]).MatchString(r.stderr) {
					t.Errorf("%s: rejected, but the message does not say why (want %q): %s", hi.Attack, hostileMessages[hi.Name], r)
				}
				t.Logf("rejected: %s", firstLine(r.stderr))
			case hi.MustReject:
				t.Errorf("%s: accepted, must be rejected: %s", hi.Attack, r)
			default:
				t.Logf("contained: %s", r.stdout)
			}

			for _, p := range hi.HostPaths {
				if _, err := os.Lstat(p); err == nil {
					os.Remove(p)
					t.Errorf("%s: %s was written on the host", hi.Attack, p)
				}
			}
			if got := fileIdentity(t, "/etc/passwd"); got != passwd {
				t.Errorf("%s: the host's /etc/passwd changed: %+v, was %+v", hi.Attack, got, passwd)
			}
			if du := dirSize(b.root); du > maxLayerSize+64<<20 {
				t.Errorf("%s: the store holds %d bytes (limit %d)", hi.Attack, du, maxLayerSize)
			}

			if !rejected {
				b.ok("rmi", ref)
			}
			if got := b.ok("images", "--no-trunc"); !sameRows(got, images) {
				t.Errorf("images changed:\n%s\nwas\n%s", got, images)
			}
			b.ok("image", "prune", "-f")
			if got := b.storeFiles(); !slices.Equal(got, files) {
				t.Errorf("after prune the store differs from before the attempt:\nextra %q\nmissing %q", minus(got, files), minus(files, got))
			}
			if ms := mounts(b.root); len(ms) != 0 {
				t.Errorf("mounts left under the store: %q", ms)
			}
			// The store still works.
			b.ok("run", "--rm", baseRef, "true")
		})
	}
}

// identity is what would change if a layer wrote through a link.
type identity struct {
	Ino, Nlink uint64
	Sum        [32]byte
}

func fileIdentity(t *testing.T, p string) identity {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	return identity{Ino: st.Ino, Nlink: uint64(st.Nlink), Sum: sha256.Sum256(data)}
}

// sameRows compares `images` tables ignoring the CREATED column's drift
// ("2 years ago" stays, but be safe) by comparing the ID column sets.
func sameRows(a, b string) bool {
	ids := func(s string) []string {
		var out []string
		for _, row := range tableRows(s) {
			if len(row) > 2 {
				out = append(out, row[0]+" "+row[1]+" "+row[2])
			}
		}
		slices.Sort(out)
		return out
	}
	return slices.Equal(ids(a), ids(b))
}

func minus(a, b []string) []string {
	var out []string
	for _, x := range a {
		if _, ok := slices.BinarySearch(b, x); !ok {
			out = append(out, x)
		}
	}
	if len(out) > 30 {
		out = append(out[:30], "…")
	}
	return out
}

func firstLine(s string) string {
	for _, l := range lines(s) {
		return l
	}
	return ""
}
