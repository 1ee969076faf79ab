package registry

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// TestTags lists the tags of a repository on the real registry, with
// token auth, two tags a page so that the Link pagination is followed.
func TestTags(t *testing.T) {
	reg, c := tokenRegistry(t)
	ctx := context.Background()
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

// TestTagsHostile: a registry's tag list cannot send the client (and the
// registry's credentials) to another host, nor make it pull a name that is
// not a tag. The other host is a second loopback address, so a broken
// check would still send nothing off this machine.
func TestTagsHostile(t *testing.T) {
	tests := []struct {
		name, body, link, wantErr string
	}{
		{"next page on another host", `{"tags":["a"]}`, `<http://127.0.0.2:1/v2/x/tags/list?last=a>; rel="next"`, "another host"},
		{"not a tag", `{"tags":["../../etc"]}`, "", "not a tag"},
		{"not JSON", `<html>`, "", "list tags"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/v2/x/tags/list" {
					if tc.link != "" {
						w.Header().Set("Link", tc.link)
					}
					w.Header().Set("Content-Type", "application/json")
					_, _ = w.Write([]byte(tc.body))
					return
				}
				w.WriteHeader(http.StatusOK) // the ping
			}))
			defer srv.Close()
			host := strings.TrimPrefix(srv.URL, "http://")
			_, err := newClient(t).Tags(context.Background(), host+"/x")
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Tags: %v, want an error about %q", err, tc.wantErr)
			}
		})
	}
}
