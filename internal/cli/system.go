package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newSystem(a *app) *cobra.Command {
	c := &cobra.Command{Use: "system", Short: "Manage berth"}
	c.AddCommand(newSystemDF(a))
	return c
}

func newSystemDF(a *app) *cobra.Command {
	var format string
	var verbose bool
	c := &cobra.Command{
		Use:   "df [OPTIONS]",
		Short: "Show berth disk usage",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := a.engine()
			if err != nil {
				return err
			}
			du, err := e.DiskUsage(cmd.Context())
			if err != nil {
				return err
			}
			type row struct {
				Type, TotalCount, Active, Size, Reclaimable string
			}
			pct := func(part, whole int64) string {
				if whole <= 0 {
					return humanSize(part)
				}
				return fmt.Sprintf("%s (%d%%)", humanSize(part), part*100/whole)
			}
			im := du.Images
			rows := []row{
				{"Images", fmt.Sprint(im.TotalCount), fmt.Sprint(im.ActiveCount), humanSize(im.TotalSize), pct(im.Reclaimable, im.TotalSize)},
				// Containers run only in the foreground so far: none is active.
				{"Containers", fmt.Sprint(len(du.Containers)), "0", humanSize(du.ContainersSize), pct(du.ContainersSize, du.ContainersSize)},
				{"Local Volumes", "0", "0", "0B", "0B"},
				{"Build Cache", "0", "0", "0B", "0B"},
			}
			fm, err := newFormatter(a.stdout, format, "{{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}")
			if err != nil {
				return err
			}
			for _, r := range rows {
				if err := fm.Row(r); err != nil {
					return err
				}
			}
			if err := fm.Flush(); err != nil {
				return err
			}
			if verbose {
				fmt.Fprintln(a.stdout, "\nImages space usage:")
				return printImageTable(a, du.Images.Items)
			}
			return nil
		},
	}
	c.Flags().StringVar(&format, "format", "", "format output using a Go template or 'json'")
	c.Flags().BoolVarP(&verbose, "verbose", "v", false, "show detailed information on space usage")
	return c
}
