package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// newImageCmd is `berth image …`: the management form of the image commands.
func newImageCmd(a *app) *cobra.Command {
	c := &cobra.Command{Use: "image", Short: "Manage images"}
	ls := newImages(a)
	ls.Use, ls.Aliases = "ls [OPTIONS] [REPOSITORY[:TAG]]", []string{"list"}
	rm := newRmi(a)
	rm.Use, rm.Aliases = "rm [OPTIONS] IMAGE [IMAGE...]", []string{"remove"}
	c.AddCommand(ls, rm, newImageInspect(a), newImagePrune(a), newPull(a), newPush(a), newTag(a),
		newHistory(a), newSave(a), newLoad(a), newImport(a))
	return c
}

func newImageInspect(a *app) *cobra.Command {
	var format string
	c := &cobra.Command{
		Use:   "inspect [OPTIONS] IMAGE [IMAGE...]",
		Short: "Display detailed information on one or more images",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := a.engine()
			if err != nil {
				return err
			}
			var docs []any
			var firstErr error
			for _, ref := range args {
				doc, err := e.ImageInspect(cmd.Context(), ref)
				if err != nil {
					fmt.Fprintln(a.stderr, "Error: No such image:", ref)
					firstErr = withCode(1, nil)
					continue
				}
				docs = append(docs, doc)
			}
			if err := printInspect(a, docs, format); err != nil {
				return err
			}
			return firstErr
		},
	}
	c.Flags().StringVarP(&format, "format", "f", "", "format output using a Go template or 'json'")
	return c
}

// printInspect prints Docker-style inspect output: an indented JSON array,
// or the template applied to each document.
func printInspect(a *app, docs []any, format string) error {
	if format == "" || format == "json" {
		if docs == nil {
			docs = []any{}
		}
		b, err := json.MarshalIndent(docs, "", "    ")
		if err != nil {
			return err
		}
		fmt.Fprintln(a.stdout, string(b))
		return nil
	}
	fm, err := newFormatter(a.stdout, strings.TrimPrefix(format, "table "), "")
	if err != nil {
		return err
	}
	for _, d := range docs {
		// Templates index the JSON form (field names as Docker prints them).
		b, _ := json.Marshal(d)
		var generic any
		_ = json.Unmarshal(b, &generic)
		if err := fm.Row(generic); err != nil {
			return err
		}
	}
	return nil
}

func newHistory(a *app) *cobra.Command {
	var quiet, noTrunc, human bool
	var format string
	c := &cobra.Command{
		Use:   "history [OPTIONS] IMAGE",
		Short: "Show the history of an image",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := a.engine()
			if err != nil {
				return err
			}
			items, err := e.History(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			type row struct {
				ID, CreatedSince, CreatedAt, CreatedBy, Size, Comment string
			}
			// history titles the ID column IMAGE, where images says IMAGE ID.
			headers["ID"] = "IMAGE"
			fm, err := newFormatter(a.stdout, format, "{{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}")
			headers["ID"] = "IMAGE ID"
			if err != nil {
				return err
			}
			for _, it := range items {
				r := row{ID: it.ID, CreatedBy: it.CreatedBy, Comment: it.Comment}
				if !noTrunc && r.ID != "<missing>" {
					r.ID = shortID(r.ID)
				}
				if quiet {
					fmt.Fprintln(a.stdout, r.ID)
					continue
				}
				created := time.Unix(it.Created, 0)
				r.CreatedSince, r.CreatedAt = ago(created), created.Format(time.RFC3339)
				if !noTrunc && len(r.CreatedBy) > 45 {
					r.CreatedBy = r.CreatedBy[:44] + "…"
				}
				r.Size = humanSize(it.Size)
				if !human {
					r.Size = fmt.Sprint(it.Size)
				}
				if err := fm.Row(r); err != nil {
					return err
				}
			}
			if quiet {
				return nil
			}
			return fm.Flush()
		},
	}
	fl := c.Flags()
	fl.BoolVarP(&quiet, "quiet", "q", false, "only show image IDs")
	fl.BoolVar(&noTrunc, "no-trunc", false, "don't truncate output")
	fl.BoolVarP(&human, "human", "H", true, "print sizes and dates in human readable format")
	fl.StringVar(&format, "format", "", "format output using a Go template")
	return c
}

func newTag(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
		Short: "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := a.engine()
			if err != nil {
				return err
			}
			return e.Tag(cmd.Context(), args[0], args[1])
		},
	}
}

func newRmi(a *app) *cobra.Command {
	var force, noPrune bool
	c := &cobra.Command{
		Use:   "rmi [OPTIONS] IMAGE [IMAGE...]",
		Short: "Remove one or more images",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := a.engine()
			if err != nil {
				return err
			}
			var failed error
			for _, ref := range args {
				items, err := e.RemoveImage(cmd.Context(), ref, force)
				for _, it := range items {
					if it.Untagged != "" {
						fmt.Fprintln(a.stdout, "Untagged:", it.Untagged)
					}
					if it.Deleted != "" {
						fmt.Fprintln(a.stdout, "Deleted:", it.Deleted)
					}
				}
				if err != nil {
					fmt.Fprintln(a.stderr, "Error response from daemon:", describe(err))
					failed = withCode(1, nil)
				}
			}
			return failed
		},
	}
	c.Flags().BoolVarP(&force, "force", "f", false, "force removal of the image")
	c.Flags().BoolVar(&noPrune, "no-prune", false, "do not delete untagged parents (berth has none)")
	return c
}
