//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"text/tabwriter"
	"time"
)

type listEntry struct {
	OCIVersion  string            `json:"ociVersion"`
	ID          string            `json:"id"`
	Pid         int               `json:"pid"`
	Status      string            `json:"status"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Created     time.Time         `json:"created"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Owner       string            `json:"owner"`
}

func cmdList(g *globals, args []string) error {
	fs := newFlags("list")
	format := fs.String("format", "table", "table or json")
	fs.StringVar(format, "f", "table", "table or json (short)")
	quiet := fs.Bool("quiet", false, "print only ids")
	fs.BoolVar(quiet, "q", false, "print only ids (short)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cs, err := rt(g).List()
	if err != nil {
		return err
	}
	var out []listEntry
	for _, c := range cs {
		st := c.State()
		out = append(out, listEntry{
			OCIVersion: st.Version, ID: st.ID, Pid: st.Pid, Status: string(st.Status),
			Bundle: st.Bundle, Rootfs: st.Rootfs, Created: st.Created, Annotations: st.Annotations, Owner: st.Owner,
		})
	}
	if *quiet {
		for _, e := range out {
			fmt.Println(e.ID)
		}
		return nil
	}
	switch *format {
	case "json":
		if out == nil {
			out = []listEntry{}
		}
		return json.NewEncoder(os.Stdout).Encode(out)
	case "table":
		w := tabwriter.NewWriter(os.Stdout, 12, 1, 3, ' ', 0)
		fmt.Fprint(w, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER\n")
		for _, e := range out {
			owner := e.Owner
			if owner == "" {
				owner = "root"
			}
			fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\n", e.ID, e.Pid, e.Status, e.Bundle, e.Created.Format(time.RFC3339Nano), owner)
		}
		return w.Flush()
	}
	return fmt.Errorf("list: invalid format %q (table or json)", *format)
}
