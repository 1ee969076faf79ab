package engine

// Image list filters, as dockerd applies them to GET /images/json and as
// `berth images --filter` applies them to the rows it gets from either
// front door (the in-process engine or a berthd that predates a filter):
// one parser and one matcher, so both answer alike.

import (
	"context"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/registry"
	imagetypes "github.com/moby/moby/api/types/image"
)

// ImageFilter is a parsed `images --filter` set. The zero value keeps
// every image.
type ImageFilter struct {
	// Dangling, when set, keeps only untagged images (true) or only
	// tagged ones (false).
	Dangling *bool
	// Labels are "key" or "key=value"; an image must carry all of them.
	Labels []string
	// References are patterns (path.Match, Docker's familiar names); an
	// image keeps the tags that match one, and is dropped when none does.
	References []string
	// Before and Since name images; only images created strictly before
	// (after) the named one are kept.
	Before, Since []string
	// Until keeps images created at or before this time (dockerd skips
	// those whose creation is After it).
	Until time.Time
}

// ParseImageFilters reads Docker's filter map (key → values, as the API's
// filters parameter and the CLI's key=value flags give it). until takes
// Docker's time forms: a duration before now ("10m"), Unix seconds
// ("1700000000.5") or an RFC 3339 date or time.
func ParseImageFilters(f map[string][]string, now time.Time) (ImageFilter, error) {
	var out ImageFilter
	for k, vals := range f {
		switch k {
		case "dangling":
			for _, v := range vals {
				var b bool
				switch v {
				case "true", "1":
					b = true
				case "false", "0":
				default:
					// dockerd's words (invalidFilter).
					return out, fmt.Errorf("invalid filter 'dangling=%s': %w", v, errdefs.ErrInvalidArgument)
				}
				if out.Dangling != nil && *out.Dangling != b {
					// dockerd accepts one of true/false; both contradict.
					return out, fmt.Errorf("invalid filter 'dangling=[true false]': %w", errdefs.ErrInvalidArgument)
				}
				out.Dangling = &b
			}
		case "label":
			out.Labels = append(out.Labels, vals...)
		case "reference":
			for _, v := range vals {
				if _, err := path.Match(v, ""); err != nil {
					return out, fmt.Errorf("invalid reference filter %q: %v: %w", v, err, errdefs.ErrInvalidArgument)
				}
			}
			out.References = append(out.References, vals...)
		case "before":
			out.Before = append(out.Before, vals...)
		case "since":
			out.Since = append(out.Since, vals...)
		case "until":
			if len(vals) > 1 {
				return out, fmt.Errorf("more than one until filter specified: %w", errdefs.ErrInvalidArgument)
			}
			for _, v := range vals {
				t, err := parseUntil(v, now)
				if err != nil {
					return out, err
				}
				out.Until = t
			}
		default:
			return out, fmt.Errorf("invalid filter '%s': %w", k, errdefs.ErrInvalidArgument)
		}
	}
	return out, nil
}

// ParseImageFilterFlags reads the CLI's repeated "key=value" flags.
func ParseImageFilterFlags(flags []string, now time.Time) (ImageFilter, error) {
	m := map[string][]string{}
	for _, kv := range flags {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return ImageFilter{}, fmt.Errorf("bad format of filter (expected name=value): %s: %w", kv, errdefs.ErrInvalidArgument)
		}
		m[k] = append(m[k], v)
	}
	return ParseImageFilters(m, now)
}

// ImageList is GET /images/json: the stored images that pass the filters
// f (nil for all), newest first.
func (e *Engine) ImageList(ctx context.Context, f map[string][]string) ([]imagetypes.Summary, error) {
	flt, err := ParseImageFilters(f, time.Now())
	if err != nil {
		return nil, err
	}
	sums, err := e.Images(ctx)
	if err != nil {
		return nil, err
	}
	return FilterImages(sums, flt)
}

// FilterImages applies flt to summaries. An image that keeps only some of
// its tags under a reference filter is returned with those tags, as
// dockerd lists it. before and since name images of sums (by ID prefix or
// name); a name that is not there is a not-found error, as in dockerd.
func FilterImages(sums []imagetypes.Summary, flt ImageFilter) ([]imagetypes.Summary, error) {
	created := func(ref string) (int64, error) {
		if s, ok := findSummary(sums, ref); ok {
			return s.Created, nil
		}
		return 0, fmt.Errorf("No such image: %s: %w", ref, errdefs.ErrNotFound) //nolint:staticcheck // dockerd's wording
	}
	var before, since *int64
	for _, ref := range flt.Before {
		t, err := created(ref)
		if err != nil {
			return nil, err
		}
		before = &t
	}
	for _, ref := range flt.Since {
		t, err := created(ref)
		if err != nil {
			return nil, err
		}
		since = &t
	}
	out := make([]imagetypes.Summary, 0, len(sums))
	for _, s := range sums {
		switch {
		case flt.Dangling != nil && (len(s.RepoTags) == 0) != *flt.Dangling,
			before != nil && s.Created >= *before,
			since != nil && s.Created <= *since,
			!flt.Until.IsZero() && time.Unix(s.Created, 0).After(flt.Until),
			!labelsMatch(flt.Labels, s.Labels):
			continue
		}
		if len(flt.References) > 0 {
			s.RepoTags = matchingRefs(s.RepoTags, flt.References)
			s.RepoDigests = matchingRefs(s.RepoDigests, flt.References)
			if len(s.RepoTags) == 0 && len(s.RepoDigests) == 0 {
				continue
			}
		}
		out = append(out, s)
	}
	return out, nil
}

// findSummary finds the image ref names among sums: a full or short ID,
// or a name in any spelling Docker accepts (busybox, busybox:latest,
// docker.io/library/busybox:latest).
func findSummary(sums []imagetypes.Summary, ref string) (imagetypes.Summary, bool) {
	hex := strings.TrimPrefix(ref, "sha256:")
	for _, s := range sums {
		if hex != "" && strings.HasPrefix(strings.TrimPrefix(s.ID, "sha256:"), hex) {
			return s, true
		}
	}
	name, err := registry.Normalize(ref)
	if err != nil {
		return imagetypes.Summary{}, false
	}
	fam := registry.FamiliarName(name)
	for _, s := range sums {
		for _, t := range append(append([]string{}, s.RepoTags...), s.RepoDigests...) {
			if t == fam || t == name {
				return s, true
			}
		}
	}
	return imagetypes.Summary{}, false
}

// matchingRefs keeps the familiar references ("busybox:1.36",
// "example.com/x@sha256:…") that one of patterns matches, as reference.
// FamiliarMatch does: the whole reference, or its name alone.
func matchingRefs(refs, patterns []string) []string {
	var out []string
	for _, r := range refs {
		name := r
		if i := strings.IndexByte(r, '@'); i >= 0 {
			name = r[:i]
		} else if i := strings.LastIndexByte(r, ':'); i > strings.LastIndexByte(r, '/') {
			name = r[:i]
		}
		for _, p := range patterns {
			if m, _ := path.Match(p, r); m {
				out = append(out, r)
				break
			}
			if m, _ := path.Match(p, name); m {
				out = append(out, r)
				break
			}
		}
	}
	return out
}
