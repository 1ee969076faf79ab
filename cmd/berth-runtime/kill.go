//go:build linux

package main

import (
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
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
	sig, err := parseSignal(sigName)
	if err != nil {
		return err
	}
	return rt(g).Kill(fs.Arg(0), sig, *all)
}

// parseSignal accepts "9", "KILL" and "SIGKILL".
func parseSignal(s string) (unix.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("invalid signal %q", s)
		}
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	if strings.HasPrefix(name, "SIGRTMIN") || strings.HasPrefix(name, "SIGRTMAX") {
		base, off := 34, 0
		rest := name[len("SIGRTMIN"):]
		if strings.HasPrefix(name, "SIGRTMAX") {
			base = 64
		}
		if rest != "" {
			n, err := strconv.Atoi(rest)
			if err != nil {
				return 0, fmt.Errorf("invalid signal %q", s)
			}
			off = n
		}
		return unix.Signal(base + off), nil
	}
	return 0, fmt.Errorf("invalid signal %q", s)
}
