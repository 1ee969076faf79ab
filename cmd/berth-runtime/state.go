//go:build linux

package main

import (
	"encoding/json"
	"os"
)

func cmdState(g *globals, args []string) error {
	fs := newFlags("state")
	if err := fs.Parse(args); err != nil {
		return err
	}
	id, err := oneID(fs)
	if err != nil {
		return err
	}
	c, err := rt(g).Load(id)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(c.State())
}
