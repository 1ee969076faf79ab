package cli

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/engine"
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
			if len(args) == 1 {
				filters = append(filters, "reference="+args[0])
			}
			// Parsed before the listing so a bad filter fails fast; the
			// engine's matcher serves both front doors (a berthd lists
			// everything to internal/client's Images).
			f, err := engine.ParseImageFilterFlags(filters, time.Now())
			if err != nil {
				return err
			}
			sums, err := e.Images(cmd.Context())
			if err != nil {
				return err
			}
			if sums, err = engine.FilterImages(sums, f); err != nil {
				return err
			}
			rows := imageRows(sums, noTrunc)
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
	fl.StringArrayVarP(&filters, "filter", "f", nil, "filter output (dangling=, label=, reference=, before=, since=, until=)")
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
