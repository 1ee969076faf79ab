package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/engine"
	"github.com/berth-dev/berth/internal/image"
	"github.com/spf13/cobra"
)

// The prune commands ask before they delete, as docker's do: the warning,
// then "Are you sure you want to continue? [y/N] " on standard output, and
// only "y" or "yes" goes ahead. -f skips the question.

// confirm prints warning and the question, and reports a yes.
func confirm(a *app, warning string) bool {
	fmt.Fprintf(a.stdout, "%s\nAre you sure you want to continue? [y/N] ", warning)
	line, _ := readLine(a.stdin)
	answer := strings.ToLower(strings.TrimSpace(line))
	return answer == "y" || answer == "yes"
}

// readLine reads up to a newline one byte at a time, so that nothing after
// the answer is taken from a stdin the caller may still read.
func readLine(r io.Reader) (string, error) {
	var b strings.Builder
	buf := make([]byte, 1)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if buf[0] == '\n' {
				return b.String(), nil
			}
			b.WriteByte(buf[0])
		}
		if err != nil {
			return b.String(), err
		}
	}
}

// imagePruneFilters adds to the filters of image and system prune what -a
// means: dangling=false (true without it), as the docker CLI sends it. A
// dangling filter given by hand stays.
func imagePruneFilters(f map[string][]string, all bool) map[string][]string {
	out := map[string][]string{"dangling": {strconv.FormatBool(!all)}}
	for k, v := range f {
		out[k] = v
	}
	return out
}

// printDeletedImages writes docker's "Deleted Images:" block.
func printDeletedImages(w io.Writer, items []image.DeleteItem) {
	if len(items) == 0 {
		return
	}
	fmt.Fprintln(w, "Deleted Images:")
	for _, it := range items {
		if it.Untagged != "" {
			fmt.Fprintln(w, "untagged:", it.Untagged)
		}
		if it.Deleted != "" {
			fmt.Fprintln(w, "deleted:", it.Deleted)
		}
	}
	fmt.Fprintln(w)
}

// printDeleted writes one "Deleted <what>:" block of names or IDs.
func printDeleted(w io.Writer, what string, names []string) {
	if len(names) == 0 {
		return
	}
	fmt.Fprintf(w, "Deleted %s:\n", what)
	for _, n := range names {
		fmt.Fprintln(w, n)
	}
	fmt.Fprintln(w)
}

func newImagePrune(a *app) *cobra.Command {
	var all, force bool
	var filters []string
	c := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused images",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !force {
				warning := "WARNING! This will remove all dangling images."
				if all {
					warning = "WARNING! This will remove all images without at least one container associated to them."
				}
				if !confirm(a, warning) {
					return nil
				}
			}
			e, err := a.engine()
			if err != nil {
				return err
			}
			items, reclaimed, err := e.PruneImages(cmd.Context(), imagePruneFilters(parseFilters(filters), all))
			printDeletedImages(a.stdout, items)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "Total reclaimed space: %s\n", humanSize(reclaimed))
			return nil
		},
	}
	c.Flags().BoolVarP(&all, "all", "a", false, "remove all unused images, not just dangling ones")
	c.Flags().BoolVarP(&force, "force", "f", false, "do not prompt for confirmation")
	c.Flags().StringArrayVar(&filters, "filter", nil, "provide filter values (e.g. \"until=<timestamp>\", \"label=key=value\", \"label!=key\")")
	return c
}

// systemPruneWarning is docker's confirmation text for system prune.
func systemPruneWarning(all, volumes, buildCache bool, filters []string) string {
	what := []string{"all stopped containers", "all networks not used by at least one container"}
	if volumes {
		what = append(what, "all anonymous volumes not used by at least one container")
	}
	if all {
		what = append(what, "all images without at least one container associated to them")
	} else {
		what = append(what, "all dangling images")
	}
	if buildCache {
		what = append(what, "all build cache")
	}
	var b strings.Builder
	b.WriteString("WARNING! This will remove:")
	for _, w := range what {
		b.WriteString("\n  - " + w)
	}
	if len(filters) > 0 {
		shown := slices.Clone(filters)
		slices.Sort(shown)
		b.WriteString("\n\n  Items to be pruned will be filtered with:")
		for _, f := range shown {
			b.WriteString("\n  - " + f)
		}
	}
	b.WriteString("\n")
	return b.String()
}

func newSystemPrune(a *app) *cobra.Command {
	var all, force, volumes bool
	var filters []string
	c := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused data",
		Long: "Remove stopped containers, networks no container uses, dangling images (all unused\n" +
			"images with -a), the build cache and, with --volumes, anonymous volumes no container uses.\n" +
			"The build cache has no labels or times to filter by: with --filter it is left alone.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f := parseFilters(filters)
			if _, ok := f["until"]; ok && volumes {
				return withCode(1, errors.New(`the "until" filter is not supported with "--volumes"`))
			}
			// The warning says what engine.BuilderPrune does: nothing
			// with filters.
			if !force && !confirm(a, systemPruneWarning(all, volumes, len(f) == 0, filters)) {
				return nil
			}
			e, err := a.engine()
			if err != nil {
				return withCode(exitEngine, err)
			}
			total, err := systemPrune(cmd.Context(), a, e, f, all, volumes)
			if err != nil {
				return withCode(1, err)
			}
			fmt.Fprintln(a.stdout, "Total reclaimed space:", humanSize(total))
			return nil
		},
	}
	c.Flags().BoolVarP(&all, "all", "a", false, "remove all unused images not just dangling ones")
	c.Flags().BoolVarP(&force, "force", "f", false, "do not prompt for confirmation")
	c.Flags().BoolVar(&volumes, "volumes", false, "prune anonymous volumes")
	c.Flags().StringArrayVar(&filters, "filter", nil, "provide filter values (e.g. \"until=<timestamp>\", \"label=key=value\")")
	return c
}

// systemPrune runs the prunes in docker's order, printing what each
// deleted, and returns the bytes reclaimed.
func systemPrune(ctx context.Context, a *app, e Backend, f map[string][]string, all, volumes bool) (int64, error) {
	var total int64
	rep, err := e.PruneContainers(ctx, f)
	if err != nil {
		return total, fmt.Errorf("prune containers: %w", err)
	}
	printDeleted(a.stdout, "Containers", rep.ContainersDeleted)
	total += int64(rep.SpaceReclaimed)

	nb, err := a.networks()
	if err != nil {
		return total, err
	}
	nets, err := nb.NetworkPrune(ctx, engine.NetworkFilters(f))
	printDeleted(a.stdout, "Networks", nets)
	if err != nil {
		return total, fmt.Errorf("prune networks: %w", err)
	}

	if volumes {
		vols, n, err := e.VolumePrune(ctx, false, f["label"], f["label!"])
		printDeleted(a.stdout, "Volumes", vols)
		total += int64(n)
		if err != nil {
			return total, fmt.Errorf("prune volumes: %w", err)
		}
	}

	items, n, err := e.PruneImages(ctx, imagePruneFilters(f, all))
	printDeletedImages(a.stdout, items)
	total += n
	if err != nil {
		return total, fmt.Errorf("prune images: %w", err)
	}

	b, err := a.builder()
	if err != nil {
		return total, err
	}
	n, err = b.BuilderPrune(ctx, f)
	total += n
	if err != nil {
		return total, fmt.Errorf("prune build cache: %w", err)
	}
	return total, nil
}
