package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/internal/imagearchive"
	"github.com/spf13/cobra"
)

// openOutput returns the file for -o, or stdout when it is not a terminal
// (an archive on a terminal is an error, as in Docker).
func openOutput(a *app, path, what string) (io.Writer, func() error, error) {
	if path == "" {
		if isTerminal(a.stdout) {
			return nil, nil, fmt.Errorf("cowardly refusing to save to a terminal. Use the -o flag or redirect")
		}
		return a.stdout, func() error { return nil }, nil
	}
	// Write beside the target and rename, so a failed save leaves no
	// truncated archive under the requested name.
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return nil, nil, fmt.Errorf("failed to save %s: %w", what, err)
	}
	done := false
	return tmp, func() error {
		if done {
			return nil
		}
		done = true
		if err := tmp.Sync(); err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
			return err
		}
		if err := tmp.Close(); err != nil {
			os.Remove(tmp.Name())
			return err
		}
		return os.Rename(tmp.Name(), path)
	}, nil
}

func newSave(a *app) *cobra.Command {
	var output, format string
	c := &cobra.Command{
		Use:   "save [OPTIONS] IMAGE [IMAGE...]",
		Short: "Save images to a tar archive (docker-archive, or an OCI layout with --format oci)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) (retErr error) {
			var f imagearchive.Format
			switch format {
			case "", "docker", "docker-archive":
				f = imagearchive.DockerArchive
			case "oci", "oci-archive":
				f = imagearchive.OCIArchive
			default:
				return fmt.Errorf("invalid --format %q: docker or oci", format)
			}
			e, err := a.engine()
			if err != nil {
				return err
			}
			w, commit, err := openOutput(a, output, "image")
			if err != nil {
				return err
			}
			if err := e.Save(cmd.Context(), w, args, f); err != nil {
				if tmp, ok := w.(*os.File); ok && tmp != os.Stdout {
					tmp.Close()
					os.Remove(tmp.Name())
				}
				return err
			}
			return commit()
		},
	}
	c.Flags().StringVarP(&output, "output", "o", "", "write to a file, instead of STDOUT")
	c.Flags().StringVar(&format, "format", "docker", "archive format: docker or oci")
	return c
}

func newLoad(a *app) *cobra.Command {
	var input string
	var quiet bool
	c := &cobra.Command{
		Use:   "load [OPTIONS]",
		Short: "Load images from a tar archive (docker-archive or OCI layout) or STDIN",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			in := a.stdin
			if input != "" {
				f, err := os.Open(input)
				if err != nil {
					return err
				}
				defer f.Close()
				in = f
			} else if isTTY(in) {
				return fmt.Errorf("requested load from stdin, but stdin is empty")
			}
			e, err := a.engine()
			if err != nil {
				return err
			}
			pw := newProgress(a.stdout, isTerminal(a.stdout), quiet || !isTerminal(a.stdout))
			names, err := e.Load(cmd.Context(), in, pw.Event)
			pw.Done()
			for _, n := range names {
				if len(n) > 7 && n[:7] == "sha256:" {
					fmt.Fprintln(a.stdout, "Loaded image ID:", n)
				} else {
					fmt.Fprintln(a.stdout, "Loaded image:", familiar(n))
				}
			}
			return err
		},
	}
	c.Flags().StringVarP(&input, "input", "i", "", "read from tar archive file, instead of STDIN")
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "suppress the load output")
	return c
}

func newImport(a *app) *cobra.Command {
	var changes []string
	var message, platform string
	c := &cobra.Command{
		Use:   "import [OPTIONS] file|- [REPOSITORY[:TAG]]",
		Short: "Import the contents from a tarball to create a filesystem image",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			in := a.stdin
			if args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer f.Close()
				in = f
			}
			ref := ""
			if len(args) == 2 {
				ref = args[1]
			}
			e, err := a.engine()
			if err != nil {
				return err
			}
			opts := imagearchive.ImportOptions{Changes: changes, Message: message}
			if platform != "" {
				p, err := parsePlatform(platform)
				if err != nil {
					return err
				}
				opts.Platform = p
			}
			id, err := e.Import(cmd.Context(), in, ref, opts)
			if err != nil {
				return err
			}
			fmt.Fprintln(a.stdout, id)
			return nil
		},
	}
	c.Flags().StringArrayVarP(&changes, "change", "c", nil, "apply Dockerfile instruction to the created image")
	c.Flags().StringVarP(&message, "message", "m", "", "set commit message for imported image")
	c.Flags().StringVar(&platform, "platform", "", "set platform (os/arch[/variant])")
	return c
}

func newExport(a *app) *cobra.Command {
	var output string
	c := &cobra.Command{
		Use:   "export [OPTIONS] CONTAINER",
		Short: "Export a container's filesystem as a tar archive",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := a.engine()
			if err != nil {
				return err
			}
			w, commit, err := openOutput(a, output, "container")
			if err != nil {
				return err
			}
			if err := e.Export(cmd.Context(), args[0], w); err != nil {
				if tmp, ok := w.(*os.File); ok && tmp != os.Stdout {
					tmp.Close()
					os.Remove(tmp.Name())
				}
				return err
			}
			return commit()
		},
	}
	c.Flags().StringVarP(&output, "output", "o", "", "write to a file, instead of STDOUT")
	return c
}
