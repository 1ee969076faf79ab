package cli

import (
	"fmt"
	"strings"

	"github.com/berth-dev/berth/internal/engine"
	"github.com/berth-dev/berth/internal/registry"
	"github.com/spf13/cobra"
)

func newPull(a *app) *cobra.Command {
	var quiet, allTags bool
	var platform string
	c := &cobra.Command{
		Use:   "pull [OPTIONS] NAME[:TAG|@DIGEST]",
		Short: "Download an image from a registry",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if allTags {
				return a.pullAllTags(cmd, args[0], platform, quiet)
			}
			return a.pull(cmd, args[0], platform, quiet)
		},
	}
	c.Flags().BoolVarP(&allTags, "all-tags", "a", false, "download all tagged images in the repository")
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "suppress verbose output")
	c.Flags().StringVar(&platform, "platform", "", "set platform if server is multi-platform capable (os/arch[/variant])")
	return c
}

// pull prints what `docker pull` prints, on stdout, and the bars on a terminal.
func (a *app) pull(cmd *cobra.Command, ref, platform string, quiet bool) error {
	e, err := a.engine()
	if err != nil {
		return err
	}
	name, err := registry.Normalize(ref)
	if err != nil {
		return err
	}
	out := a.stdout
	if !quiet {
		if !strings.Contains(ref, "@") && !hasTag(ref) {
			fmt.Fprintln(out, "Using default tag: latest")
		}
		tagOrDigest, repoPath := splitForDisplay(name)
		fmt.Fprintf(out, "%s: Pulling from %s\n", tagOrDigest, repoPath)
	}
	pw := newProgress(out, isTerminal(out), quiet)
	res, err := e.Pull(cmd.Context(), ref, engine.PullOptions{Platform: platform, Events: pw.Event})
	pw.Done()
	if err != nil {
		return err
	}
	if quiet {
		fmt.Fprintln(out, res.Name)
		return nil
	}
	if _, d, ok := strings.Cut(res.Digest, "@"); ok {
		fmt.Fprintf(out, "Digest: %s\n", d)
	}
	fmt.Fprintln(out, res.Status(registry.FamiliarName(res.Name)))
	fmt.Fprintln(out, res.Name)
	return nil
}

// pullAllTags is `pull -a`: every tag of the repository, each announced
// as "<tag>: Pulling from <path>", then one status line for the
// repository, as docker prints it.
func (a *app) pullAllTags(cmd *cobra.Command, ref, platform string, quiet bool) error {
	repo, err := registry.Repository(ref)
	if err != nil {
		return err
	}
	e, err := a.engine()
	if err != nil {
		return err
	}
	out := a.stdout
	pw := newProgress(out, isTerminal(out), quiet)
	res, err := e.PullAllTags(cmd.Context(), repo, engine.PullOptions{Platform: platform, Events: pw.Event})
	pw.Done()
	if err != nil {
		return err
	}
	if !quiet {
		fmt.Fprintln(out, res.Status(registry.FamiliarRepository(res.Name)))
	}
	fmt.Fprintln(out, res.Name)
	return nil
}

// hasTag reports whether a reference as typed names a tag.
func hasTag(ref string) bool {
	i := strings.LastIndex(ref, ":")
	return i > strings.LastIndex(ref, "/")
}

// splitForDisplay returns ("latest", "library/busybox") for
// docker.io/library/busybox:latest — what Docker's "Pulling from" shows.
func splitForDisplay(name string) (tagOrDigest, repoPath string) {
	repo := name
	if i := strings.Index(name, "@"); i >= 0 {
		repo, tagOrDigest = name[:i], name[i+1:]
	} else if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		repo, tagOrDigest = name[:i], name[i+1:]
	}
	if i := strings.Index(repo, "/"); i >= 0 {
		repoPath = repo[i+1:]
	}
	return tagOrDigest, repoPath
}
