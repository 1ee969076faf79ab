package cli

import (
	"fmt"

	"github.com/berth-dev/berth/internal/registry"
	"github.com/spf13/cobra"
)

func newPush(a *app) *cobra.Command {
	var quiet, allTags bool
	c := &cobra.Command{
		Use:   "push [OPTIONS] NAME[:TAG]",
		Short: "Upload an image to a registry",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if allTags {
				return a.pushAllTags(cmd, args[0], quiet)
			}
			e, err := a.engine()
			if err != nil {
				return err
			}
			name, err := registry.Normalize(args[0])
			if err != nil {
				return err
			}
			if !quiet {
				fmt.Fprintf(a.stdout, "The push refers to repository [%s]\n", repoOfName(name))
			}
			pw := newProgress(a.stdout, isTerminal(a.stdout), quiet)
			res, err := e.Push(cmd.Context(), args[0], pw.Event)
			pw.Done()
			if err != nil {
				return err
			}
			if quiet {
				fmt.Fprintln(a.stdout, res.Name)
				return nil
			}
			fmt.Fprintf(a.stdout, "%s: digest: %s size: %d\n", res.Tag, res.Digest, res.Size)
			return nil
		},
	}
	c.Flags().BoolVarP(&allTags, "all-tags", "a", false, "push all tags of an image to the repository")
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "suppress verbose output")
	return c
}

// pushAllTags is `push -a`: every local tag of the repository, each
// closed by its "<tag>: digest: … size: …" line, as docker prints them.
func (a *app) pushAllTags(cmd *cobra.Command, ref string, quiet bool) error {
	repo, err := registry.Repository(ref)
	if err != nil {
		return err
	}
	e, err := a.engine()
	if err != nil {
		return err
	}
	if !quiet {
		fmt.Fprintf(a.stdout, "The push refers to repository [%s]\n", repo)
	}
	pw := newProgress(a.stdout, isTerminal(a.stdout), quiet)
	res, err := e.PushAllTags(cmd.Context(), repo, pw.Event)
	pw.Done()
	if err != nil {
		return err
	}
	if quiet {
		for _, r := range res {
			fmt.Fprintln(a.stdout, r.Name)
		}
	}
	return nil
}

// repoOfName strips the tag from a normalized reference.
func repoOfName(name string) string {
	tagOrDigest, _ := splitForDisplay(name)
	if tagOrDigest == "" {
		return name
	}
	return name[:len(name)-len(tagOrDigest)-1]
}
