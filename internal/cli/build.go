package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth/internal/build"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/docker/go-units"
	"github.com/spf13/cobra"
)

// builder is the part of the backend that builds: the in-process engine,
// or berthd's POST /build through internal/client.
type builder interface {
	Build(ctx context.Context, opts build.Options) (build.Result, error)
	BuilderPrune(ctx context.Context, filters map[string][]string) (int64, error)
}

func (a *app) builder() (builder, error) {
	e, err := a.engine()
	if err != nil {
		return nil, err
	}
	b, ok := e.(builder)
	if !ok {
		return nil, fmt.Errorf("this backend cannot build: %w", errdefs.ErrNotSupported)
	}
	return b, nil
}

type buildFlags struct {
	tags, buildArgs, labels, secrets []string
	file, target, platform, iidfile  string
	progress                         string
	noCache, pull, quiet, rm         bool
}

func newBuild(a *app) *cobra.Command {
	var f buildFlags
	c := &cobra.Command{
		Use:   "build [OPTIONS] PATH | - | TARBALL",
		Short: "Build an image from a Dockerfile",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.build(cmd.Context(), args[0], f)
		},
	}
	fl := c.Flags()
	fl.StringArrayVarP(&f.tags, "tag", "t", nil, `name and optionally a tag in the "name:tag" format`)
	fl.StringVarP(&f.file, "file", "f", "", `name of the Dockerfile (default "PATH/Dockerfile")`)
	fl.StringArrayVar(&f.buildArgs, "build-arg", nil, "set build-time variables")
	fl.StringArrayVar(&f.labels, "label", nil, "set metadata for an image")
	fl.StringArrayVar(&f.secrets, "secret", nil, `secret to expose to the build (format: "id=mysecret[,src=/local/secret]")`)
	fl.StringVar(&f.target, "target", "", "set the target build stage to build")
	fl.StringVar(&f.platform, "platform", "", "set platform (only the host's is supported)")
	fl.StringVar(&f.iidfile, "iidfile", "", "write the image ID to the file")
	fl.StringVar(&f.progress, "progress", "auto", "set type of progress output (auto, plain, tty, quiet)")
	fl.BoolVar(&f.noCache, "no-cache", false, "do not use cache when building the image")
	fl.BoolVar(&f.pull, "pull", false, "always attempt to pull a newer version of the image")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "suppress the build output and print image ID on success")
	fl.BoolVar(&f.rm, "rm", true, "remove intermediate containers after a successful build (always)")
	_ = fl.MarkHidden("rm")
	return c
}

func (a *app) build(ctx context.Context, src string, f buildFlags) error {
	opts := build.Options{Tags: f.tags, Target: f.target, NoCache: f.noCache, Pull: f.pull, Platform: f.platform}
	switch f.progress {
	case "auto", "plain", "tty", "":
		if !f.quiet {
			opts.Progress = a.stderr
		}
	case "quiet":
	default:
		return fmt.Errorf("invalid --progress %q: want auto, plain, tty or quiet: %w", f.progress, errdefs.ErrInvalidArgument)
	}
	opts.BuildArgs = map[string]string{}
	for _, kv := range f.buildArgs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			// --build-arg K takes K from the environment, if set.
			if v, ok = os.LookupEnv(k); !ok {
				continue
			}
		}
		opts.BuildArgs[k] = v
	}
	if len(f.labels) > 0 {
		opts.Labels = map[string]string{}
		for _, kv := range f.labels {
			k, v, _ := strings.Cut(kv, "=")
			opts.Labels[k] = v
		}
	}
	if len(f.secrets) > 0 {
		opts.Secrets = map[string]string{}
		for _, s := range f.secrets {
			var id, path string
			for _, field := range strings.Split(s, ",") {
				k, v, _ := strings.Cut(field, "=")
				switch k {
				case "id":
					id = v
				case "src", "source":
					path = v
				case "type":
					if v != "file" {
						return fmt.Errorf("--secret %s: only file secrets are supported: %w", s, errdefs.ErrNotSupported)
					}
				default:
					return fmt.Errorf("--secret %s: unknown key %q: %w", s, k, errdefs.ErrInvalidArgument)
				}
			}
			if id == "" {
				return fmt.Errorf("--secret %s: id is required: %w", s, errdefs.ErrInvalidArgument)
			}
			if path == "" {
				path = id
			}
			opts.Secrets[id] = path
		}
	}

	stdinUsed := false
	if src == "-" {
		// `-`: a tar context or a Dockerfile, told apart by their bytes.
		br := bufio.NewReaderSize(a.stdin, 1<<16)
		head, _ := br.Peek(512)
		stdinUsed = true
		if looksLikeArchive(head) {
			opts.ContextTar = br
		} else {
			df, err := io.ReadAll(br)
			if err != nil {
				return err
			}
			opts.DockerfileContent = df
		}
	} else {
		st, err := os.Stat(src)
		if err != nil {
			return fmt.Errorf("unable to prepare context: path %q not found: %w", src, errdefs.ErrNotFound)
		}
		if st.IsDir() {
			opts.ContextDir = src
		} else {
			fh, err := os.Open(src)
			if err != nil {
				return err
			}
			defer fh.Close()
			opts.ContextTar = fh
		}
	}
	switch {
	case f.file == "-":
		if stdinUsed {
			return fmt.Errorf("invalid argument: can't use stdin for both build context and dockerfile: %w", errdefs.ErrInvalidArgument)
		}
		df, err := io.ReadAll(a.stdin)
		if err != nil {
			return err
		}
		opts.DockerfileContent = df
	case f.file != "" && opts.ContextDir != "":
		// -f is relative to the working directory; inside the context it
		// is passed as a context path (so NAME.dockerignore applies),
		// outside it is read here.
		abs, _ := filepath.Abs(f.file)
		ctxAbs, _ := filepath.Abs(opts.ContextDir)
		if rel, err := filepath.Rel(ctxAbs, abs); err == nil && !strings.HasPrefix(rel, "..") {
			opts.Dockerfile = rel
		} else {
			df, err := os.ReadFile(f.file)
			if err != nil {
				return fmt.Errorf("failed to read dockerfile: %w", err)
			}
			opts.DockerfileContent = df
			opts.Dockerfile = filepath.Base(f.file)
			// Its own NAME.dockerignore lives beside it, not in the
			// context (BuildKit's rule).
			ign, err := os.ReadFile(f.file + ".dockerignore")
			switch {
			case err == nil:
				opts.DockerignoreContent = ign
			case !errors.Is(err, fs.ErrNotExist):
				return fmt.Errorf("read %s.dockerignore: %w", f.file, err)
			}
		}
	case f.file != "":
		opts.Dockerfile = f.file
	}

	if f.iidfile != "" {
		// As docker build: a failed build must not leave the ID of an
		// earlier one there.
		if err := os.Remove(f.iidfile); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove iidfile: %w", err)
		}
	}
	b, err := a.builder()
	if err != nil {
		return err
	}
	res, err := b.Build(ctx, opts)
	if err != nil {
		return err
	}
	if f.iidfile != "" {
		if err := os.WriteFile(f.iidfile, []byte(res.ID), 0o644); err != nil {
			return fmt.Errorf("write iidfile: %w", err)
		}
	}
	if f.quiet {
		fmt.Fprintln(a.stdout, res.ID)
	}
	return nil
}

// looksLikeArchive: gzip, bzip2, zstd, xz magic or a tar header.
func looksLikeArchive(b []byte) bool {
	for _, m := range [][]byte{{0x1f, 0x8b}, []byte("BZh"), {0x28, 0xb5, 0x2f, 0xfd}, {0xfd, '7', 'z', 'X', 'Z', 0}} {
		if bytes.HasPrefix(b, m) {
			return true
		}
	}
	return len(b) >= 262 && bytes.Equal(b[257:262], []byte("ustar"))
}

// newBuilderCmd is `berth builder` with `prune`.
func newBuilderCmd(a *app) *cobra.Command {
	c := &cobra.Command{Use: "builder", Short: "Manage builds"}
	var all, force bool
	prune := &cobra.Command{
		Use:   "prune",
		Short: "Remove build cache",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !force && !confirm(a, "WARNING! This will remove all build cache.") {
				return nil
			}
			b, err := a.builder()
			if err != nil {
				return err
			}
			n, err := b.BuilderPrune(cmd.Context(), nil)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "Total:\t%s\n", units.HumanSize(float64(n)))
			return nil
		},
	}
	prune.Flags().BoolVarP(&all, "all", "a", false, "remove all unused build cache (always)")
	prune.Flags().BoolVarP(&force, "force", "f", false, "do not prompt for confirmation")
	c.AddCommand(prune)
	return c
}
