package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/google/go-containerregistry/pkg/name"
)

// tagsPageSize is how many tags Tags asks for per request (the n
// parameter); the registry may send fewer and link to the next page.
var tagsPageSize = 1000

// Limits on what a registry may make Tags read: a page's body and the
// number of pages.
const (
	maxTagsPage  = 4 << 20
	maxTagsPages = 10000
)

// Tags lists the tags of the repository ref names (a tag or digest in ref
// is ignored), in the registry's order, following its pagination (the
// distribution spec's Link header with rel="next"). A tag that is not a
// valid tag name is an error, not something to pull.
func (c *Client) Tags(ctx context.Context, ref string) ([]string, error) {
	r, err := parse(ref)
	if err != nil {
		return nil, err
	}
	repo := r.Context()
	subject := repoName(repo)
	rt, err := c.transport(ctx, repo.Registry, []string{pullScope(repo)})
	if err != nil {
		return nil, fmt.Errorf("list tags of %s: %w", subject, err)
	}
	next := endpoint(repo, "tags", "list") + "?n=" + strconv.Itoa(tagsPageSize)
	var tags []string
	for page := 0; next != ""; page++ {
		if page == maxTagsPages {
			return nil, fmt.Errorf("list tags of %s: %w: more than %d pages", subject, errdefs.ErrNotSupported, maxTagsPages)
		}
		var got []string
		got, next, err = tagsPage(ctx, rt, repo, next)
		if err != nil {
			return nil, err
		}
		tags = append(tags, got...)
	}
	return tags, nil
}

// tagsPage GETs one page of a tag list and returns its tags and the URL
// of the next page ("" at the last).
func tagsPage(ctx context.Context, rt http.RoundTripper, repo name.Repository, u string) ([]string, string, error) {
	subject := repoName(repo)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, "", err
	}
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		return nil, "", classify(err, subject)
	}
	defer resp.Body.Close()
	if err := checkResponse(resp, subject, http.StatusOK); err != nil {
		return nil, "", err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTagsPage+1))
	if err != nil {
		return nil, "", classify(err, "list tags of "+subject)
	}
	if len(body) > maxTagsPage {
		return nil, "", fmt.Errorf("list tags of %s: %w: a page larger than %d bytes", subject, errdefs.ErrNotSupported, maxTagsPage)
	}
	var list struct {
		Tags []string `json:"tags"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, "", fmt.Errorf("list tags of %s: %w: %v", subject, errdefs.ErrInvalidArgument, err)
	}
	for _, t := range list.Tags {
		if _, err := name.NewTag(repo.Name()+":"+t, name.StrictValidation); err != nil || strings.ContainsAny(t, ":@/") {
			return nil, "", fmt.Errorf("list tags of %s: %w: the registry lists %q, which is not a tag", subject, errdefs.ErrInvalidArgument, t)
		}
	}
	next := nextPage(req.URL, resp.Header.Values("Link"))
	// The next page stays on this registry: the transport would send the
	// registry's credentials wherever a link points.
	if n, err := url.Parse(next); next != "" && (err != nil || n.Host != req.URL.Host) {
		return nil, "", fmt.Errorf("list tags of %s: %w: the next page is on another host: %s", subject, errdefs.ErrInvalidArgument, next)
	}
	return list.Tags, next, nil
}

// nextPage finds the rel="next" target among Link header values, resolved
// against the URL of the page that sent it.
func nextPage(base *url.URL, links []string) string {
	for _, h := range links {
		for _, l := range strings.Split(h, ",") {
			target, params, ok := strings.Cut(strings.TrimSpace(l), ";")
			if !ok || !strings.HasPrefix(target, "<") || !strings.HasSuffix(target, ">") {
				continue
			}
			for _, p := range strings.Split(params, ";") {
				k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
				if strings.EqualFold(k, "rel") && strings.Trim(v, `"`) == "next" {
					ref, err := url.Parse(target[1 : len(target)-1])
					if err != nil {
						return ""
					}
					return base.ResolveReference(ref).String()
				}
			}
		}
	}
	return ""
}
