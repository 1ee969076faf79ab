//go:build linux

package main

func cmdPause(g *globals, args []string) error {
	fs := newFlags("pause")
	if err := fs.Parse(args); err != nil {
		return err
	}
	id, err := oneID(fs)
	if err != nil {
		return err
	}
	return rt(g).Pause(id)
}

func cmdResume(g *globals, args []string) error {
	fs := newFlags("resume")
	if err := fs.Parse(args); err != nil {
		return err
	}
	id, err := oneID(fs)
	if err != nil {
		return err
	}
	return rt(g).Resume(id)
}
