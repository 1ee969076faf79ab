// Package cli is the `berth` command line: Docker's commands, flags, output
// and exit codes over the engine. Commands live one per file; this file
// holds the root command, the global flags and the error → exit code map.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"

	"github.com/berth-dev/berth/internal/client"
	"github.com/berth-dev/berth/internal/engine"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/registry"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// Docker's exit codes for failures of the engine and of the command itself.
const (
	exitEngine     = 125
	exitCannotExec = 126
	exitNotFound   = 127
)

// app holds the global flags and the lazily opened engine.
type app struct {
	root, state string
	host        string // unix:///path of a berthd; "" runs the engine in process
	insecure    []string
	eng         Backend
	stdin       io.Reader
	stdout      io.Writer
	stderr      io.Writer
}

// engine returns the backend the commands drive: the engine in process, or
// berthd over the Docker Engine API when --host / BERTH_HOST names one.
func (a *app) engine() (Backend, error) {
	if a.eng != nil {
		return a.eng, nil
	}
	if a.host != "" {
		c, err := client.New(a.host)
		if err != nil {
			return nil, err
		}
		a.eng = c
		return c, nil
	}
	engine.Mark("cli: open engine")
	e, err := engine.Open(engine.Options{Root: a.root, State: a.state, Insecure: a.insecure})
	engine.Mark("cli: engine opened")
	if err != nil {
		return nil, err
	}
	if lost := e.DiscardedImages(); len(lost) > 0 {
		fmt.Fprintf(os.Stderr, "WARNING: removed images whose layers a reboot cut short (pull them again): %s\n", strings.Join(lost, ", "))
	}
	a.eng = e
	return e, nil
}

// isTerminal reports whether w is a terminal (progress bars, table widths).
func isTerminal(w io.Writer) bool { return isTTY(w) }

// isTTY reports whether stream (an *os.File) is a terminal.
func isTTY(stream any) bool {
	f, ok := stream.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// familiar is the short form of a normalized reference ("busybox:latest").
func familiar(name string) string { return registry.FamiliarName(name) }

func parsePlatform(s string) (ocispec.Platform, error) { return engine.ParsePlatform(s) }

// statusError carries an exit code chosen by a command.
type statusError struct {
	code int
	err  error
}

func (s *statusError) Error() string {
	if s.err == nil {
		return ""
	}
	return s.err.Error()
}
func (s *statusError) Unwrap() error { return s.err }

func withCode(code int, err error) error { return &statusError{code: code, err: err} }

// Main runs the berth CLI and returns the process exit code.
func Main(args []string) int {
	a := &app{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr}
	root := newRoot(a, args)
	root.SetArgs(args)
	ctx, stop := signal.NotifyContext(context.Background(), unix.SIGINT, unix.SIGTERM)
	defer stop()
	err := root.ExecuteContext(ctx)
	if a.eng != nil {
		a.eng.Close()
	}
	if err == nil {
		return 0
	}
	var se *statusError
	if errors.As(err, &se) {
		if se.err != nil && se.err.Error() != "" {
			fmt.Fprintln(a.stderr, "berth:", describe(se.err))
		}
		return se.code
	}
	fmt.Fprintln(a.stderr, "Error:", describe(err))
	return 1
}

// describe prints an error the way users read it: the message, with the
// errdefs category left implicit.
func describe(err error) string {
	msg := err.Error()
	for _, cat := range []error{errdefs.ErrNotFound, errdefs.ErrAlreadyExists, errdefs.ErrInvalidArgument,
		errdefs.ErrConflict, errdefs.ErrNotRunning, errdefs.ErrPermission, errdefs.ErrUnavailable, errdefs.ErrNotSupported} {
		if errors.Is(err, cat) {
			msg = strings.TrimSuffix(msg, ": "+cat.Error())
		}
	}
	return msg
}

// newRoot builds the command tree for args (the command line without the
// program name): only the command args invoke when that is clear, every
// command otherwise (see addCommands).
func newRoot(a *app, args []string) *cobra.Command {
	root := &cobra.Command{
		Use:           "berth [OPTIONS] COMMAND",
		Short:         "A container engine: Docker's command line, rebuilt from the kernel up",
		SilenceUsage:  true,
		SilenceErrors: true,
		// Flags after the image name belong to the container's command.
		TraverseChildren: true,
	}
	pf := root.PersistentFlags()
	pf.StringVar(&a.root, "root", envOr("BERTH_ROOT", engine.DefaultRoot), "store directory (images, containers) [$BERTH_ROOT]")
	pf.StringVar(&a.state, "state", envOr("BERTH_STATE", engine.DefaultState), "runtime state directory [$BERTH_STATE]")
	pf.StringVar(&a.host, "host", os.Getenv("BERTH_HOST"), "berthd socket to use (unix:///run/berth/berth.sock) instead of the engine in process [$BERTH_HOST]")
	pf.StringSliceVar(&a.insecure, "insecure-registry", envList("BERTH_INSECURE_REGISTRIES"), "registry (host[:port]) to reach over plain HTTP [$BERTH_INSECURE_REGISTRIES]")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return withCode(exitEngine, fmt.Errorf("%w\nSee '%s --help'.", err, c.CommandPath()))
	})
	addCommands(root, a, args)
	return root
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func envList(key string) []string {
	if v := os.Getenv(key); v != "" {
		return strings.Split(v, ",")
	}
	return nil
}
