package image

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// fakeID makes a digest whose hex starts with prefix.
func fakeID(prefix string) digest.Digest {
	return digest.Digest("sha256:" + prefix + strings.Repeat("0", 64-len(prefix)))
}

// record names a synthetic image (no blobs: names and records only).
type record struct {
	id      string
	names   []string
	digests []string
}

func seed(t *testing.T, s *Store, recs []record) {
	t.Helper()
	for _, r := range recs {
		img := Image{ID: fakeID(r.id), Target: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: fakeID("f" + r.id)}}
		for _, d := range r.digests {
			n, err := NormalizeName(d)
			if err != nil {
				t.Fatal(err)
			}
			img.Digests = append(img.Digests, n)
		}
		if len(r.names) == 0 {
			err := s.update(context.Background(), func(rs *records) error { rs.upsert(img); return nil })
			if err != nil {
				t.Fatal(err)
			}
		}
		for _, n := range r.names {
			if err := s.Tag(context.Background(), n, img); err != nil {
				t.Fatalf("tag %s: %v", n, err)
			}
		}
	}
}

func TestGet(t *testing.T) {
	s := recordStore(t)
	mdA := fakeID("faaaa1")
	seed(t, s, []record{
		{id: "aaaa1", names: []string{"busybox", "busybox:1.36", "bbbb"}, digests: []string{"busybox@" + mdA.String()}},
		{id: "aaaa2", names: []string{"localhost:5000/app:v1"}},
		{id: "bbbb3", names: []string{"other"}},
		{id: "cccc4"},
	})
	for _, tc := range []struct {
		ref, want string // want: the ID prefix, or "" for an error
		err       error
	}{
		{ref: "busybox", want: "aaaa1"},
		{ref: "busybox:latest", want: "aaaa1"},
		{ref: "library/busybox:1.36", want: "aaaa1"},
		{ref: "docker.io/library/busybox:1.36", want: "aaaa1"},
		{ref: "busybox:nope", err: errdefs.ErrNotFound},
		{ref: fakeID("aaaa1").String(), want: "aaaa1"},
		{ref: fakeID("aaaa1").Encoded(), want: "aaaa1"},
		{ref: fakeID("eeee").Encoded(), err: errdefs.ErrNotFound},
		{ref: "aaaa1", want: "aaaa1"},
		{ref: "sha256:aaaa2", want: "aaaa2"},
		{ref: "aaaa", err: errdefs.ErrInvalidArgument}, // ambiguous
		{ref: "bbbb", want: "aaaa1"},                   // a name wins over an ID prefix
		{ref: "bbbb3", want: "bbbb3"},
		{ref: "cccc", want: "cccc4"}, // dangling, by ID only
		{ref: "busybox@" + mdA.String(), want: "aaaa1"},
		{ref: "localhost:5000/app@" + fakeID("faaaa2").String(), want: "aaaa2"}, // manifest digest, same repository
		{ref: "ubuntu@" + mdA.String(), err: errdefs.ErrNotFound},
		{ref: "localhost:5000/app:v1", want: "aaaa2"},
		{ref: "app:v1", err: errdefs.ErrNotFound},
		{ref: "NOT A NAME", err: errdefs.ErrNotFound},
	} {
		t.Run(tc.ref, func(t *testing.T) {
			img, err := s.Get(context.Background(), tc.ref)
			if tc.err != nil {
				if !errorsIs(err, tc.err) {
					t.Fatalf("Get = %v, %v; want %v", img.ID, err, tc.err)
				}
				return
			}
			if err != nil || img.ID != fakeID(tc.want) {
				t.Fatalf("Get = %v, %v; want %s", img.ID, err, fakeID(tc.want))
			}
		})
	}
}

func TestTagMovesName(t *testing.T) {
	s := recordStore(t)
	ctx := context.Background()
	seed(t, s, []record{{id: "aa", names: []string{"app:v1"}}, {id: "bb", names: []string{"app:v2"}}})
	if err := s.Tag(ctx, "app:v1", Image{ID: fakeID("bb")}); err != nil {
		t.Fatal(err)
	}
	a, err := s.Get(ctx, "aa")
	if err != nil || len(a.Names) != 0 {
		t.Fatalf("old image: %+v, %v; want it dangling", a, err)
	}
	b, err := s.Get(ctx, "app:v1")
	if err != nil || b.ID != fakeID("bb") || !slices.Equal(b.Names, []string{"docker.io/library/app:v2", "docker.io/library/app:v1"}) {
		t.Fatalf("app:v1 = %+v, %v", b, err)
	}
	if b.LastTagTime.IsZero() {
		t.Error("LastTagTime not set")
	}
	if err := s.Tag(ctx, "Bad:Name", b); !errdefs.IsInvalidArgument(err) {
		t.Errorf("Tag(Bad:Name) = %v, want invalid argument", err)
	}
	// A digest reference is no tag; AddDigest records it as a repo digest.
	byDigest := "app@" + fakeID("1").String()
	if err := s.Tag(ctx, byDigest, b); !errdefs.IsInvalidArgument(err) {
		t.Errorf("Tag(%s) = %v, want invalid argument", byDigest, err)
	}
	if err := s.AddDigest(ctx, b, byDigest); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(ctx, byDigest); err != nil || got.ID != b.ID || !slices.Equal(got.Digests, []string{"docker.io/library/" + byDigest}) || len(got.Names) != 2 {
		t.Errorf("after AddDigest: %+v, %v", got, err)
	}
	if err := s.AddDigest(ctx, b, "app:v9"); !errdefs.IsInvalidArgument(err) {
		t.Errorf("AddDigest(tag) = %v, want invalid argument", err)
	}
	if err := s.Tag(ctx, "x", Image{ID: fakeID("cc")}); !errdefs.IsNotFound(err) {
		t.Errorf("tagging an unknown image without a manifest = %v, want not found", err)
	}
	if list, _ := s.List(ctx); len(list) != 2 {
		t.Errorf("%d images, want 2", len(list))
	}
}

func TestNames(t *testing.T) {
	for _, tc := range []struct{ in, norm, familiar string }{
		{"busybox", "docker.io/library/busybox:latest", "busybox:latest"},
		{"user/app:1", "docker.io/user/app:1", "user/app:1"},
		{"localhost:5000/app", "localhost:5000/app:latest", "localhost:5000/app:latest"},
		{"quay.io/a/b@" + fakeID("1").String(), "quay.io/a/b@" + fakeID("1").String(), "quay.io/a/b@" + fakeID("1").String()},
	} {
		n, err := NormalizeName(tc.in)
		if err != nil || n != tc.norm {
			t.Errorf("NormalizeName(%q) = %q, %v; want %q", tc.in, n, err, tc.norm)
		}
		if f := FamiliarName(n); f != tc.familiar {
			t.Errorf("FamiliarName(%q) = %q, want %q", n, f, tc.familiar)
		}
	}
}
