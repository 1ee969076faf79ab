package cli

import (
	"errors"
	"fmt"

	"github.com/berth-dev/berth/internal/engine"
	"github.com/berth-dev/berth/internal/enginetypes"
	"github.com/spf13/cobra"
)

func newExec(a *app) *cobra.Command {
	var o engine.ExecOptions
	var interactive bool
	var envFile []string
	var detachKeys string
	c := &cobra.Command{
		Use:   "exec [OPTIONS] CONTAINER COMMAND [ARG...]",
		Short: "Execute a command in a running container",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := a.engine()
			if err != nil {
				return withCode(exitEngine, err)
			}
			o.Cmd = args[1:]
			for _, f := range envFile {
				vars, err := readEnvFile(f)
				if err != nil {
					return withCode(exitEngine, err)
				}
				o.Env = append(vars, o.Env...)
			}
			var expanded []string
			for _, kv := range o.Env {
				expanded = append(expanded, expandEnv(kv)...)
			}
			o.Env = expanded
			if o.Tty && interactive && !isTTY(a.stdin) {
				return withCode(exitEngine, errors.New("the input device is not a TTY"))
			}
			stdin := a.stdin
			if !interactive || o.Detach {
				stdin = nil
			}
			code, err := e.Exec(cmd.Context(), args[0], o, stdin, a.stdout, a.stderr)
			var ee *engine.ExitError
			if errors.As(err, &ee) {
				return withCode(ee.Code, ee)
			}
			if err != nil {
				return withCode(exitEngine, fmt.Errorf("Error response from daemon: %s", describe(err)))
			}
			if code != 0 {
				return withCode(code, nil)
			}
			return nil
		},
	}
	fl := c.Flags()
	fl.SetInterspersed(false)
	fl.BoolVarP(&interactive, "interactive", "i", false, "keep STDIN open even if not attached")
	fl.BoolVarP(&o.Tty, "tty", "t", false, "allocate a pseudo-TTY")
	fl.BoolVarP(&o.Detach, "detach", "d", false, "detached mode: run command in the background")
	fl.StringArrayVarP(&o.Env, "env", "e", nil, "set environment variables")
	fl.StringArrayVar(&envFile, "env-file", nil, "read in a file of environment variables")
	fl.StringVarP(&o.User, "user", "u", "", "username or UID (format: \"<name|uid>[:<group|gid>]\")")
	fl.StringVarP(&o.WorkingDir, "workdir", "w", "", "working directory inside the container")
	fl.BoolVar(&o.Privileged, "privileged", false, "give extended privileges to the command")
	fl.StringVar(&detachKeys, "detach-keys", "", "override the key sequence for detaching a container")
	return c
}

func newAttach(a *app) *cobra.Command {
	var noStdin, sigProxy bool
	var detachKeys string
	c := &cobra.Command{
		Use:   "attach [OPTIONS] CONTAINER",
		Short: "Attach local standard input, output, and error streams to a running container",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := a.engine()
			if err != nil {
				return withCode(exitEngine, err)
			}
			info, err := e.ContainerInspect(cmd.Context(), args[0], false)
			if err != nil {
				return withCode(1, err)
			}
			if !info.State.Running {
				return withCode(1, errors.New("You cannot attach to a stopped container, start it first"))
			}
			keys, err := enginetypes.ParseDetachKeys(detachKeys)
			if err != nil {
				return withCode(1, err)
			}
			return a.runAttached(cmd.Context(), e, info.ID, info.Config.Tty, info.Config.OpenStdin && !noStdin, sigProxy, false, keys, false)
		},
	}
	c.Flags().BoolVar(&noStdin, "no-stdin", false, "do not attach STDIN")
	c.Flags().BoolVar(&sigProxy, "sig-proxy", true, "proxy all received signals to the process")
	c.Flags().StringVar(&detachKeys, "detach-keys", "", "override the key sequence for detaching a container")
	return c
}
