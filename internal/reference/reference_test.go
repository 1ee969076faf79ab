package reference

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
	dref "github.com/distribution/reference"
)

const (
	sha256Hex = "0627054f257b5bbc96d25def625f4c0ef54aa96c44184ad1d9d9e175f241d012"
	sha512Hex = sha256Hex + sha256Hex
)

// handPicked are inputs at the edges of each production, many from
// distribution/reference's own tests.
var handPicked = []string{
	"", "busybox", "busybox:latest", "busybox:1.36.1-musl", "library/busybox", "docker.io/busybox",
	"docker.io/library/busybox:latest", "index.docker.io/busybox", "index.docker.io/library/busybox",
	"index.docker.io/user/app:v1", "user/app", "user/app/sub", "docker.io/user/app",
	"library/sub/app", "docker.io/library/sub/app",
	"localhost/app", "localhost:5000/app:1", "localhost", "localhost:5000", "localhost/app@sha256:" + sha256Hex,
	"127.0.0.1:5000/busybox", "127.0.0.1:5000/busybox:v1@sha256:" + sha256Hex, "127.0.0.1:/x", "127.0.0.1:5000a/x",
	"[::1]:5000/app", "[::1]/app", "[2001:db8::1]:443/a/b:c", "[]/app", "[::1]x/app", "[::1]:/app", "[g::1]/app",
	"[::1/app", "::1/app",
	"registry.example.com/a/b/c:tag", "Registry.Example.com/app", "Foo/bar", "foo/Bar", "FOO", "Busybox",
	"busybox:Latest", "busybox:LATEST_1.x-y", "busybox:_x", "busybox:.x", "busybox:-x", "busybox:",
	"busybox:" + strings.Repeat("a", 128), "busybox:" + strings.Repeat("a", 129),
	"busybox@sha256:" + sha256Hex, "busybox:1@sha256:" + sha256Hex, "busybox@sha256:" + strings.ToUpper(sha256Hex),
	"busybox@SHA256:" + sha256Hex, "busybox@sha256:" + sha256Hex[:63], "busybox@sha256:" + sha256Hex + "0",
	"busybox@sha512:" + sha512Hex, "busybox@sha384:" + sha512Hex[:96], "busybox@md5:" + sha256Hex[:32],
	"busybox@sha256:" + sha256Hex[:31], "busybox@sha256+b64:" + sha256Hex, "busybox@sha256.x:" + sha256Hex,
	"busybox@1sha:" + sha256Hex, "busybox@", "busybox@sha256", "busybox@@sha256:" + sha256Hex,
	"busybox@sha256:" + sha256Hex + "@sha256:" + sha256Hex, "sha256:" + sha256Hex, sha256Hex, sha256Hex[:63],
	sha256Hex + "0", strings.ToUpper(sha256Hex), "a", "a/b", "a-b", "a--b", "a---b", "a_b", "a__b", "a___b",
	"a.b", "a..b", "a._b", "a-_b", "_a", "a_", "-a", "a-", ".a", "a.", "a/", "/a", "a//b", "a/b/", "a:b:c",
	"a/b:c/d", "a/b:c@d", "a.b.c/d", "a_b.c/d", "a_b.c/d:e", "a_b.c:5000/d", "a-b.c/d", "-ab.c/d", "ab-.c/d",
	"a.-b.c/d", "a..c/d", "ab.c./d", "ab:c/d", "ab:/d", "ab:1/d", "xn--bcher-kva.example/p", "a b", "a\tb",
	"a/b c", "ünïcode", "host.io/ünï", "host.io/p:ünï", strings.Repeat("a", 255), strings.Repeat("a", 256),
	"docker.io/" + strings.Repeat("a/", 127) + "a", "docker.io/" + strings.Repeat("a/", 128) + "a",
	"host.io/" + strings.Repeat("b", 255), "host.io/" + strings.Repeat("b", 256),
	"a_b.c/" + strings.Repeat("d", 250),
}

// generated combines domains, paths, tags and digests, valid and not.
func generated() []string {
	domains := []string{"", "docker.io/", "index.docker.io/", "localhost/", "localhost:5000/", "127.0.0.1:5000/",
		"Example.COM/", "ex-ample.com/", "[fe80::1]:5000/", "a_b.c/", "bad_/", "x:y/"}
	paths := []string{"busybox", "library/busybox", "user/app", "a.b_c__d---e", "a/b/c/d", "A", "a__", "x/_y", "library/a/b"}
	suffixes := []string{"", ":latest", ":v1.0-rc_1", ":", ":-bad", "@sha256:" + sha256Hex, ":t@sha256:" + sha256Hex,
		"@sha256:" + sha256Hex[:10], "@sha512:" + sha256Hex, ":T@sha512:" + sha512Hex}
	var out []string
	for _, d := range domains {
		for _, p := range paths {
			for _, s := range suffixes {
				out = append(out, d+p+s)
			}
		}
	}
	return out
}

// random draws strings from an alphabet that hits every separator of the
// grammar, so most mismatches would show within a few thousand inputs.
func random(n int) []string {
	const alphabet = "ab0Z9-_._/:@[]f:/a.-_"
	r := rand.New(rand.NewPCG(1, 2))
	out := make([]string, n)
	for i := range out {
		b := make([]byte, 1+r.IntN(14))
		for j := range b {
			b[j] = alphabet[r.IntN(len(alphabet))]
		}
		out[i] = string(b)
	}
	return out
}

// compare checks that ParseNormalized and distribution/reference agree on
// s: the same error message, or the same parts and forms.
func compare(t *testing.T, s string) {
	t.Helper()
	got, err := ParseNormalized(s)
	want, werr := dref.ParseNormalizedNamed(s)
	if (err == nil) != (werr == nil) {
		t.Errorf("%q: error %v, distribution/reference: %v", s, err, werr)
		return
	}
	if err != nil {
		if err.Error() != werr.Error() {
			t.Errorf("%q: error %q, distribution/reference: %q", s, err, werr)
		}
		if !errdefs.IsInvalidArgument(err) {
			t.Errorf("%q: error %v is not classified as invalid argument", s, err)
		}
		return
	}
	var wantTag, wantDigest string
	if tg, ok := want.(dref.Tagged); ok {
		wantTag = tg.Tag()
	}
	if dg, ok := want.(dref.Digested); ok {
		wantDigest = dg.Digest().String()
	}
	_, wantCanonical := want.(dref.Canonical)
	checks := []struct{ what, got, want string }{
		{"String", got.String(), want.String()},
		{"Name", got.Name(), want.Name()},
		{"Domain", got.Domain, dref.Domain(want)},
		{"Path", got.Path, dref.Path(want)},
		{"Tag", got.Tag, wantTag},
		{"Digest", string(got.Digest), wantDigest},
		{"FamiliarString", got.FamiliarString(), dref.FamiliarString(want)},
		{"FamiliarName", got.FamiliarName(), dref.FamiliarName(want)},
		{"TagNameOnly", got.TagNameOnly().String(), dref.TagNameOnly(want).String()},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%q: %s = %q, distribution/reference: %q", s, c.what, c.got, c.want)
		}
	}
	if got.Canonical() != wantCanonical {
		t.Errorf("%q: Canonical = %v, distribution/reference: %v", s, got.Canonical(), wantCanonical)
	}
}

func TestMatchesDistributionReference(t *testing.T) {
	sets := []struct {
		name   string
		inputs []string
	}{
		{"hand-picked", handPicked},
		{"generated", generated()},
		{"random", random(20000)},
	}
	for _, set := range sets {
		t.Run(set.name, func(t *testing.T) {
			valid := 0
			for _, s := range set.inputs {
				compare(t, s)
				if _, err := ParseNormalized(s); err == nil {
					valid++
				}
			}
			// Both outcomes must be exercised for the comparison to mean
			// anything.
			if valid == 0 || valid == len(set.inputs) {
				t.Errorf("%d of %d inputs valid: the set does not exercise both outcomes", valid, len(set.inputs))
			}
		})
	}
}

func TestExamples(t *testing.T) {
	tests := []struct {
		in, normalized, familiar string
	}{
		{"busybox", "docker.io/library/busybox:latest", "busybox:latest"},
		{"user/app:v1", "docker.io/user/app:v1", "user/app:v1"},
		{"127.0.0.1:5000/app", "127.0.0.1:5000/app:latest", "127.0.0.1:5000/app:latest"},
		{"busybox@sha256:" + sha256Hex, "docker.io/library/busybox@sha256:" + sha256Hex, "busybox@sha256:" + sha256Hex},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			r, err := ParseNormalized(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if got := r.TagNameOnly().String(); got != tt.normalized {
				t.Errorf("normalized %q, want %q", got, tt.normalized)
			}
			if got := r.TagNameOnly().FamiliarString(); got != tt.familiar {
				t.Errorf("familiar %q, want %q", got, tt.familiar)
			}
		})
	}
}

func FuzzMatchesDistributionReference(f *testing.F) {
	for _, s := range handPicked {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { compare(t, s) })
}
