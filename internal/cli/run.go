package cli

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/berth-dev/berth/internal/engine"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// createFlags are the flags `create` and `run` share.
type createFlags struct {
	name, workdir, user, hostname, entrypoint, pull, platform string
	env, envFile, labels                                      []string
	tty, interactive, readOnly                                bool
	entrypointSet                                             bool
}

func (f *createFlags) register(fl *pflag.FlagSet) {
	// -h is --hostname here, as in Docker; help is --help only.
	fl.Bool("help", false, "print usage")
	fl.StringVar(&f.name, "name", "", "assign a name to the container")
	fl.StringVarP(&f.workdir, "workdir", "w", "", "working directory inside the container")
	fl.StringVarP(&f.user, "user", "u", "", "username or UID (format: <name|uid>[:<group|gid>])")
	fl.StringVarP(&f.hostname, "hostname", "h", "", "container host name")
	fl.StringVar(&f.entrypoint, "entrypoint", "", "overwrite the default ENTRYPOINT of the image")
	fl.StringVar(&f.pull, "pull", "missing", `pull image before running ("always", "missing", "never")`)
	fl.StringVar(&f.platform, "platform", "", "set platform if server is multi-platform capable")
	fl.StringArrayVarP(&f.env, "env", "e", nil, "set environment variables")
	fl.StringArrayVar(&f.envFile, "env-file", nil, "read in a file of environment variables")
	fl.StringArrayVarP(&f.labels, "label", "l", nil, "set meta data on a container")
	fl.BoolVarP(&f.tty, "tty", "t", false, "allocate a pseudo-TTY")
	fl.BoolVarP(&f.interactive, "interactive", "i", false, "keep STDIN open even if not attached")
	fl.BoolVar(&f.readOnly, "read-only", false, "mount the container's root filesystem as read only")
}

// options turns flags and positional args (IMAGE [COMMAND] [ARG...]) into a create request.
func (f *createFlags) options(cmd *cobra.Command, args []string) (engine.CreateOptions, error) {
	o := engine.CreateOptions{Name: f.name}
	cfg := &o.Config
	cfg.Image = args[0]
	if len(args) > 1 {
		cfg.Cmd = args[1:]
	}
	if cmd.Flags().Changed("entrypoint") {
		cfg.Entrypoint = []string{f.entrypoint}
	}
	cfg.WorkingDir, cfg.User, cfg.Hostname = f.workdir, f.user, f.hostname
	cfg.Tty, cfg.OpenStdin, cfg.AttachStdin = f.tty, f.interactive, f.interactive
	cfg.AttachStdout, cfg.AttachStderr = true, true
	for _, file := range f.envFile {
		vars, err := readEnvFile(file)
		if err != nil {
			return o, err
		}
		cfg.Env = append(cfg.Env, vars...)
	}
	for _, kv := range f.env {
		cfg.Env = append(cfg.Env, expandEnv(kv)...)
	}
	cfg.Labels = map[string]string{}
	for _, l := range f.labels {
		k, v, _ := strings.Cut(l, "=")
		cfg.Labels[k] = v
	}
	o.HostConfig = container.HostConfig{ReadonlyRootfs: f.readOnly}
	return o, nil
}

// expandEnv handles `-e NAME` (take the value from our environment; unset
// means skip, as in Docker).
func expandEnv(kv string) []string {
	if strings.Contains(kv, "=") {
		return []string{kv}
	}
	if v, ok := os.LookupEnv(kv); ok {
		return []string{kv + "=" + v}
	}
	return nil
}

func readEnvFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, expandEnv(line)...)
	}
	return out, sc.Err()
}

// ensureImage pulls the image when the policy says so, reporting on stderr
// like `docker run` does.
func (a *app) ensureImage(cmd *cobra.Command, e *engine.Engine, ref, policy, platform string) error {
	switch policy {
	case "always":
	case "missing", "":
		if _, err := e.ImageInspect(cmd.Context(), ref); err == nil {
			return nil
		} else if !errdefs.IsNotFound(err) {
			return err
		}
		fmt.Fprintf(a.stderr, "Unable to find image '%s' locally\n", ref)
	case "never":
		return nil
	default:
		return fmt.Errorf("invalid pull option: '%s': must be one of \"always\", \"missing\" or \"never\"", policy)
	}
	saved := a.stdout
	a.stdout = a.stderr
	defer func() { a.stdout = saved }()
	return a.pull(cmd, ref, platform, false)
}

func newCreate(a *app) *cobra.Command {
	f := &createFlags{}
	c := &cobra.Command{
		Use:   "create [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create a new container",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := a.engine()
			if err != nil {
				return withCode(exitEngine, err)
			}
			o, err := f.options(cmd, args)
			if err != nil {
				return withCode(exitEngine, err)
			}
			if err := a.ensureImage(cmd, e, args[0], f.pull, f.platform); err != nil {
				return withCode(exitEngine, err)
			}
			ctr, err := e.Create(cmd.Context(), o)
			if err != nil {
				return withCode(exitEngine, err)
			}
			fmt.Fprintln(a.stdout, ctr.ID)
			return nil
		},
	}
	c.Flags().SetInterspersed(false)
	f.register(c.Flags())
	return c
}

func newRun(a *app) *cobra.Command {
	f := &createFlags{}
	var rm bool
	c := &cobra.Command{
		Use:   "run [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create and run a new container from an image",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := a.engine()
			if err != nil {
				return withCode(exitEngine, err)
			}
			o, err := f.options(cmd, args)
			if err != nil {
				return withCode(exitEngine, err)
			}
			o.HostConfig.AutoRemove = rm
			if err := a.ensureImage(cmd, e, args[0], f.pull, f.platform); err != nil {
				return withCode(exitEngine, err)
			}
			ctr, err := e.Create(cmd.Context(), o)
			if err != nil {
				return withCode(exitEngine, err)
			}
			var stdin = a.stdin
			if !f.interactive {
				stdin = nil
			}
			runErr := e.RunForeground(cmd.Context(), ctr.ID, stdin, a.stdout, a.stderr)
			if rm {
				if err := e.Remove(cmd.Context(), ctr.ID, true); err != nil && runErr == nil {
					runErr = err
				}
			}
			var ee *engine.ExitError
			if errors.As(runErr, &ee) {
				if ee.Msg != "" {
					return withCode(ee.Code, ee)
				}
				return withCode(ee.Code, nil)
			}
			if runErr != nil {
				return withCode(exitEngine, runErr)
			}
			return nil
		},
	}
	c.Flags().SetInterspersed(false)
	f.register(c.Flags())
	c.Flags().BoolVar(&rm, "rm", false, "automatically remove the container when it exits")
	return c
}

func newRm(a *app) *cobra.Command {
	var force, volumes bool
	c := &cobra.Command{
		Use:     "rm [OPTIONS] CONTAINER [CONTAINER...]",
		Aliases: []string{"container rm"},
		Short:   "Remove one or more containers",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := a.engine()
			if err != nil {
				return err
			}
			var failed error
			for _, ref := range args {
				if err := e.Remove(cmd.Context(), ref, force); err != nil {
					fmt.Fprintln(a.stderr, "Error response from daemon:", describe(err))
					failed = withCode(1, nil)
					continue
				}
				fmt.Fprintln(a.stdout, ref)
			}
			return failed
		},
	}
	c.Flags().BoolVarP(&force, "force", "f", false, "force the removal of a running container")
	c.Flags().BoolVarP(&volumes, "volumes", "v", false, "remove anonymous volumes associated with the container")
	return c
}
