//go:build linux

package main

import (
	"fmt"

	"github.com/berth-dev/berth/internal/linux/signum"
)

func cmdKill(g *globals, args []string) error {
	fs := newFlags("kill")
	all := fs.Bool("all", false, "signal every process in the container")
	fs.BoolVar(all, "a", false, "signal every process in the container (short)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		return fmt.Errorf("kill: usage: kill [--all] <container-id> [signal]")
	}
	sigName := "SIGTERM"
	if fs.NArg() == 2 {
		sigName = fs.Arg(1)
	}
	sig, ok := signum.Parse(sigName)
	if !ok {
		return fmt.Errorf("invalid signal %q", sigName)
	}
	return rt(g).Kill(fs.Arg(0), sig, *all)
}
