package registry

import (
	"context"
	"net/url"
	"slices"
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
)

// TestTags lists the tags of a repository on the real registry, with
// token auth, two tags a page so that the Link pagination is followed.
func TestTags(t *testing.T) {
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{Auth: "token"})
	ctx := context.Background()
	c := newClient(t)
	if err := c.Login(ctx, reg.Host, reg.User, reg.Password); err != nil {
		t.Fatal(err)
	}
	store := newBlobStore()
	img := buildImage(t, store, "amd64", nil)
	want := []string{"1", "1.1", "latest", "next"}
	for _, tag := range want {
		if _, err := c.Push(ctx, reg.Host+"/tags/box:"+tag, store, img.PushImage, nil); err != nil {
			t.Fatal(err)
		}
	}
	old := tagsPageSize
	tagsPageSize = 2
	t.Cleanup(func() { tagsPageSize = old })
	got, err := c.Tags(ctx, reg.Host+"/tags/box")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("tags %v, want %v", got, want)
	}
	if _, err := c.Tags(ctx, reg.Host+"/tags/none"); err == nil {
		t.Errorf("tags of a repository that does not exist: no error")
	}
}

func TestNextPage(t *testing.T) {
	base, _ := url.Parse("http://127.0.0.1:5000/v2/a/tags/list?n=2")
	tests := []struct {
		name  string
		links []string
		want  string
	}{
		{"none", nil, ""},
		{"relative", []string{`</v2/a/tags/list?last=b&n=2>; rel="next"`}, "http://127.0.0.1:5000/v2/a/tags/list?last=b&n=2"},
		{"unquoted, among others", []string{`<http://x/prev>; rel=prev, </v2/a/tags/list?last=c>; rel=next`}, "http://127.0.0.1:5000/v2/a/tags/list?last=c"},
		{"no next", []string{`</v2/a/tags/list?last=b>; rel="prev"`}, ""},
		{"malformed", []string{`/v2/a/tags/list; rel="next"`}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := nextPage(base, tc.links); got != tc.want {
				t.Errorf("nextPage = %q, want %q", got, tc.want)
			}
		})
	}
}
