package cli

import (
	"errors"
	"fmt"

	"github.com/berth-dev/berth/internal/engine"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/spf13/cobra"
)

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
