package cli

import (
	"fmt"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/spf13/cobra"
)

// newInspect is `berth inspect`: containers first, then images, as Docker
// resolves a name; --type restricts the search.
func newInspect(a *app) *cobra.Command {
	var format, typ string
	var size bool
	c := &cobra.Command{
		Use:   "inspect [OPTIONS] NAME|ID [NAME|ID...]",
		Short: "Return low-level information on containers and images",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := a.engine()
			if err != nil {
				return withCode(exitEngine, err)
			}
			var docs []any
			var failed error
			for _, ref := range args {
				if typ == "" || typ == "container" {
					if doc, err := e.ContainerInspect(cmd.Context(), ref, size); err == nil {
						docs = append(docs, doc)
						continue
					} else if !errdefs.IsNotFound(err) {
						fmt.Fprintln(a.stderr, "Error:", describe(err))
						failed = withCode(1, nil)
						continue
					}
				}
				if typ == "" || typ == "image" {
					if doc, err := e.ImageInspect(cmd.Context(), ref); err == nil {
						docs = append(docs, doc)
						continue
					}
				}
				fmt.Fprintln(a.stderr, "Error: No such object:", ref)
				failed = withCode(1, nil)
			}
			if err := printInspect(a, docs, format); err != nil {
				return withCode(1, err)
			}
			return failed
		},
	}
	c.Flags().StringVarP(&format, "format", "f", "", "format output using a Go template or 'json'")
	c.Flags().StringVar(&typ, "type", "", "only inspect objects of the given type (container, image)")
	c.Flags().BoolVarP(&size, "size", "s", false, "display total file sizes if the type is container")
	return c
}

func newContainerInspect(a *app) *cobra.Command {
	c := newInspect(a)
	c.Use, c.Short = "inspect [OPTIONS] CONTAINER [CONTAINER...]", "Display detailed information on one or more containers"
	_ = c.Flags().Set("type", "container")
	return c
}
