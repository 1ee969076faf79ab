package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"

	"github.com/berth-dev/berth/internal/client"
	"github.com/berth-dev/berth/internal/engine"
	"github.com/berth-dev/berth/internal/enginetypes"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

// createContainer creates the container, pulling its image first when the
// policy says so, reporting on stderr like `docker run` does. With the
// default policy ("missing") it tries the create first, as the docker CLI
// does, and looks the image up only when that fails: the common case
// reads the image store once, in the engine.
func (a *app) createContainer(cmd *cobra.Command, e Backend, o engine.CreateOptions, ref, policy, platform string) (*engine.Container, error) {
	ctx := cmd.Context()
	switch policy {
	case "always":
		if err := a.pullQuiet(cmd, ref, platform); err != nil {
			return nil, err
		}
	case "missing", "":
		ctr, err := e.Create(ctx, o)
		if err == nil || !errdefs.IsNotFound(err) {
			return ctr, err
		}
		// NotFound may name something else (a volume, a network):
		// pull only when the image is what is missing.
		if _, ierr := e.ImageInspect(ctx, ref); ierr == nil {
			return nil, err
		} else if !errdefs.IsNotFound(ierr) {
			return nil, ierr
		}
		fmt.Fprintf(a.stderr, "Unable to find image '%s' locally\n", ref)
		if err := a.pullQuiet(cmd, ref, platform); err != nil {
			return nil, err
		}
	case "never":
	default:
		return nil, fmt.Errorf("invalid pull option: '%s': must be one of \"always\", \"missing\" or \"never\"", policy)
	}
	return e.Create(ctx, o)
}

// pullQuiet pulls with the progress on stderr: stdout is the container's.
func (a *app) pullQuiet(cmd *cobra.Command, ref, platform string) error {
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
			ctr, err := a.createContainer(cmd, e, o, args[0], f.pull, f.platform)
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
	var rm, detach, sigProxy bool
	var detachKeys string
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
			if detach {
				o.Config.AttachStdin, o.Config.AttachStdout, o.Config.AttachStderr = false, false, false
			}
			keys, err := enginetypes.ParseDetachKeys(detachKeys)
			if err != nil {
				return withCode(exitEngine, err)
			}
			if f.tty && f.interactive && !isTTY(a.stdin) {
				return withCode(exitEngine, errors.New("the input device is not a TTY"))
			}
			ctr, err := a.createContainer(cmd, e, o, args[0], f.pull, f.platform)
			if err != nil {
				return withCode(exitEngine, err)
			}
			if detach {
				if err := e.Start(cmd.Context(), ctr.ID); err != nil {
					return startFailed(cmd.Context(), e, ctr.ID, rm, err)
				}
				fmt.Fprintln(a.stdout, ctr.ID)
				return nil
			}
			return a.runAttached(cmd.Context(), e, ctr.ID, f.tty, f.interactive, sigProxy, rm, keys, true)
		},
	}
	c.Flags().SetInterspersed(false)
	f.register(c.Flags())
	c.Flags().BoolVar(&rm, "rm", false, "automatically remove the container when it exits")
	c.Flags().BoolVarP(&detach, "detach", "d", false, "run container in background and print container ID")
	c.Flags().BoolVar(&sigProxy, "sig-proxy", true, "proxy received signals to the process")
	c.Flags().StringVar(&detachKeys, "detach-keys", "", "override the key sequence for detaching a container")
	return c
}

// startFailed removes a container whose start failed when --rm was given
// and returns the error with Docker's exit code.
func startFailed(ctx context.Context, e Backend, id string, rm bool, err error) error {
	if rm {
		_ = e.Remove(context.WithoutCancel(ctx), id, engine.RemoveOptions{Force: true})
	}
	var ee *engine.ExitError
	if errors.As(err, &ee) {
		return withCode(ee.Code, ee)
	}
	return withCode(exitEngine, err)
}

// runAttached starts a created container with our stdio attached and
// returns its exit status as the command's.
func (a *app) runAttached(ctx context.Context, e Backend, id string, tty, interactive, sigProxy, rm bool, keys []byte, start bool) error {
	// The user's ctrl-c must reach the container, not end the attach:
	// run with a context the signal does not cancel.
	ctx = context.WithoutCancel(ctx)
	opts := engine.AttachOptions{Stdout: a.stdout, Stderr: a.stderr, DetachKeys: keys}
	if interactive {
		opts.Stdin = a.stdin
	}
	if tty {
		opts.Stderr = a.stdout
		if in := client.Terminal(a.stdin); in != nil && interactive {
			defer client.RawTerminal(in)()
		}
		stop := a.forwardResize(ctx, e, id)
		defer stop()
	} else if sigProxy {
		stop := proxySignals(ctx, e, id)
		defer stop()
	}
	var code int
	var err error
	if start {
		code, err = e.StartAttached(ctx, id, opts)
	} else {
		if err = e.Attach(ctx, id, opts); err == nil {
			code, err = e.Wait(ctx, id)
		}
	}
	if errors.Is(err, engine.ErrDetached) {
		if tty {
			fmt.Fprint(a.stderr, "\r\n")
		}
		return nil
	}
	if rm {
		// The engine removes an AutoRemove container when it exits (in
		// StartAttached, or its monitor does): NotFound is the usual case,
		// the removal here covers an attach that ended otherwise.
		if rerr := e.Remove(ctx, id, engine.RemoveOptions{Force: true}); rerr != nil && err == nil && !errdefs.IsNotFound(rerr) {
			err = rerr
		}
	}
	if err != nil {
		var ee *engine.ExitError
		if errors.As(err, &ee) {
			return withCode(ee.Code, ee)
		}
		return withCode(exitEngine, err)
	}
	if code != 0 {
		return withCode(code, nil)
	}
	return nil
}

// forwardResize sends our terminal's size (stdout's, else stdin's) now and
// on every SIGWINCH.
func (a *app) forwardResize(ctx context.Context, e Backend, id string) func() {
	tf := client.Terminal(a.stdout, a.stdin)
	if tf == nil {
		return func() {}
	}
	send := func() {
		if sz := client.TerminalSize(tf); sz != nil {
			_ = e.Resize(ctx, id, sz[0], sz[1])
		}
	}
	// The monitor's control socket appears once the container starts.
	go func() {
		for i := 0; i < 3; i++ {
			send()
		}
	}()
	return client.WatchResize(send)
}

// proxySignals forwards the signals a user sends us to the container, as
// `docker run --sig-proxy` does.
func proxySignals(ctx context.Context, e Backend, id string) func() {
	ch := make(chan os.Signal, 8)
	signal.Notify(ch, unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-ch:
				_ = e.Kill(ctx, id, unix.SignalName(s.(unix.Signal)))
			case <-done:
				return
			}
		}
	}()
	return func() { signal.Stop(ch); close(done) }
}
