//go:build linux

package main

func cmdStart(g *globals, args []string) error {
	fs := newFlags("start")
	if err := fs.Parse(args); err != nil {
		return err
	}
	id, err := oneID(fs)
	if err != nil {
		return err
	}
	return rt(g).Start(id)
}
