//go:build linux

package main

import "github.com/berth-dev/berth/internal/errdefs"

func cmdDelete(g *globals, args []string) error {
	fs := newFlags("delete")
	force := fs.Bool("force", false, "kill the container first if it is running")
	fs.BoolVar(force, "f", false, "kill the container first if it is running (short)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	id, err := oneID(fs)
	if err != nil {
		return err
	}
	err = rt(g).Delete(id, *force)
	if err != nil && *force && errdefs.IsNotFound(err) {
		// runc: delete --force of a missing container succeeds.
		return nil
	}
	return err
}
