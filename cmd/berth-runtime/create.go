//go:build linux

package main

import (
	"flag"

	"github.com/berth-dev/berth/internal/runtime"
)

func cmdCreate(g *globals, args []string) error {
	fs := newFlags("create")
	o := createFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	id, err := oneID(fs)
	if err != nil {
		return err
	}
	_, err = rt(g).Create(id, o)
	return err
}

// createFlags defines the options create and run share.
func createFlags(fs *flag.FlagSet) *runtime.CreateOptions {
	o := &runtime.CreateOptions{}
	fs.StringVar(&o.Bundle, "bundle", ".", "path to the bundle directory")
	fs.StringVar(&o.Bundle, "b", ".", "path to the bundle directory (short)")
	fs.StringVar(&o.PidFile, "pid-file", "", "write the init's pid to this file")
	fs.StringVar(&o.ConsoleSocket, "console-socket", "", "unix socket that receives the terminal's master fd")
	fs.BoolVar(&o.NoPivot, "no-pivot", false, "use MS_MOVE and chroot instead of pivot_root")
	fs.IntVar(&o.PreserveFds, "preserve-fds", 0, "number of extra fds (from 3) passed to the container")
	var ignored bool
	fs.BoolVar(&ignored, "no-new-keyring", false, "ignored: no session keyring is created")
	return o
}
