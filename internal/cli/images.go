package cli

import (
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	imagetypes "github.com/moby/moby/api/types/image"
	"github.com/spf13/cobra"
)

// imageRow is what `images --format` templates see (Docker's field names).
type imageRow struct {
	Repository   string
	Tag          string
	Digest       string
	ID           string
	CreatedSince string
	CreatedAt    string
	Size         string
	SharedSize   string
	UniqueSize   string
	VirtualSize  string
	Containers   string
	summary      imagetypes.Summary
}

func newImages(a *app) *cobra.Command {
	var quiet, digests, noTrunc, all bool
	var format string
	var filters []string
	c := &cobra.Command{
		Use:     "images [OPTIONS] [REPOSITORY[:TAG]]",
		Aliases: []string{"image ls", "image list"},
		Short:   "List images",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := a.engine()
			if err != nil {
				return err
			}
			sums, err := e.Images(cmd.Context())
			if err != nil {
				return err
			}
			if len(args) == 1 {
				filters = append(filters, "reference="+args[0])
			}
			f, err := parseImageFilters(filters)
			if err != nil {
				return err
			}
			rows := imageRows(sums, noTrunc)
			rows = f.apply(rows, sums)
			if quiet {
				seen := map[string]bool{}
				for _, r := range rows {
					if !seen[r.ID] {
						seen[r.ID] = true
						fmt.Fprintln(a.stdout, r.ID)
					}
				}
				return nil
			}
			def := "{{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
			if digests {
				def = "{{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
			}
			fm, err := newFormatter(a.stdout, format, def)
			if err != nil {
				return err
			}
			for _, r := range rows {
				if err := fm.Row(r); err != nil {
					return err
				}
			}
			return fm.Flush()
		},
	}
	fl := c.Flags()
	fl.BoolVarP(&quiet, "quiet", "q", false, "only show image IDs")
	fl.BoolVarP(&all, "all", "a", false, "show all images (berth keeps no intermediate images; same as default)")
	fl.BoolVar(&digests, "digests", false, "show digests")
	fl.BoolVar(&noTrunc, "no-trunc", false, "don't truncate output")
	fl.StringVar(&format, "format", "", "format output: table, table TEMPLATE, json, or a Go template")
	fl.StringArrayVarP(&filters, "filter", "f", nil, "filter output (dangling=, label=, reference=, before=, since=)")
	return c
}

// imageRows expands summaries into one row per repository:tag, newest first.
func imageRows(sums []imagetypes.Summary, noTrunc bool) []imageRow {
	sort.SliceStable(sums, func(i, j int) bool { return sums[i].Created > sums[j].Created })
	var rows []imageRow
	for _, s := range sums {
		id := s.ID
		if !noTrunc {
			id = shortID(id)
		}
		created := time.Unix(s.Created, 0)
		base := imageRow{
			ID: id, CreatedSince: ago(created), CreatedAt: created.Format("2006-01-02 15:04:05 -0700 MST"),
			Size: humanSize(s.Size), VirtualSize: humanSize(s.Size), SharedSize: "N/A", UniqueSize: "N/A",
			Containers: "N/A", summary: s, Repository: "<none>", Tag: "<none>", Digest: "<none>",
		}
		if s.SharedSize >= 0 {
			base.SharedSize = humanSize(s.SharedSize)
			base.UniqueSize = humanSize(s.Size - s.SharedSize)
		}
		if s.Containers >= 0 {
			base.Containers = fmt.Sprint(s.Containers)
		}
		digestOf := func(repo string) string {
			for _, d := range s.RepoDigests {
				if r, dg, ok := strings.Cut(d, "@"); ok && r == repo {
					return dg
				}
			}
			return "<none>"
		}
		if len(s.RepoTags) == 0 {
			r := base
			if len(s.RepoDigests) > 0 {
				repo, dg, _ := strings.Cut(s.RepoDigests[0], "@")
				r.Repository, r.Digest = repo, dg
			}
			rows = append(rows, r)
			continue
		}
		for _, t := range s.RepoTags {
			r := base
			i := strings.LastIndex(t, ":")
			r.Repository, r.Tag = t[:i], t[i+1:]
			r.Digest = digestOf(r.Repository)
			rows = append(rows, r)
		}
	}
	return rows
}

// shortID is Docker's 12-hex-digit image ID.
func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	return id[:min(12, len(id))]
}

type imageFilter struct {
	dangling      *bool
	labels        []string
	refs          []string
	before, since string
}

func parseImageFilters(list []string) (*imageFilter, error) {
	f := &imageFilter{}
	for _, kv := range list {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("bad format of filter (expected name=value): %s", kv)
		}
		switch k {
		case "dangling":
			b := v == "true" || v == "1"
			if !b && v != "false" && v != "0" {
				return nil, fmt.Errorf("invalid filter 'dangling=%s'", v)
			}
			f.dangling = &b
		case "label":
			f.labels = append(f.labels, v)
		case "reference":
			f.refs = append(f.refs, v)
		case "before":
			f.before = v
		case "since":
			f.since = v
		default:
			return nil, fmt.Errorf("invalid filter '%s'", k)
		}
	}
	return f, nil
}

// apply keeps the rows the filters accept; before/since compare creation
// times with the named image's.
func (f *imageFilter) apply(rows []imageRow, sums []imagetypes.Summary) []imageRow {
	created := func(ref string) (int64, bool) {
		for _, s := range sums {
			if strings.HasPrefix(strings.TrimPrefix(s.ID, "sha256:"), strings.TrimPrefix(ref, "sha256:")) {
				return s.Created, true
			}
			for _, t := range s.RepoTags {
				if t == ref || t == ref+":latest" {
					return s.Created, true
				}
			}
		}
		return 0, false
	}
	var out []imageRow
	for _, r := range rows {
		s := r.summary
		if f.dangling != nil && (len(s.RepoTags) == 0) != *f.dangling {
			continue
		}
		if !matchLabels(s.Labels, f.labels) {
			continue
		}
		if len(f.refs) > 0 {
			ok := false
			for _, p := range f.refs {
				full := r.Repository + ":" + r.Tag
				if m, _ := path.Match(p, r.Repository); m {
					ok = true
				}
				if m, _ := path.Match(p, full); m {
					ok = true
				}
			}
			if !ok {
				continue
			}
		}
		if f.before != "" {
			if t, ok := created(f.before); !ok || s.Created >= t {
				continue
			}
		}
		if f.since != "" {
			if t, ok := created(f.since); !ok || s.Created <= t {
				continue
			}
		}
		out = append(out, r)
	}
	return out
}

func matchLabels(labels map[string]string, want []string) bool {
	for _, w := range want {
		k, v, hasV := strings.Cut(w, "=")
		got, ok := labels[k]
		if !ok || (hasV && got != v) {
			return false
		}
	}
	return true
}

// printImageTable is the verbose `system df` image table.
func printImageTable(a *app, sums []imagetypes.Summary) error {
	fm, err := newFormatter(a.stdout, "", "{{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}")
	if err != nil {
		return err
	}
	for _, r := range imageRows(sums, false) {
		if err := fm.Row(r); err != nil {
			return err
		}
	}
	return fm.Flush()
}
