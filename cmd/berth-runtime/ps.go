//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

func cmdPs(g *globals, args []string) error {
	fs := newFlags("ps")
	format := fs.String("format", "table", "table or json")
	fs.StringVar(format, "f", "table", "table or json (short)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() < 1 {
		return fmt.Errorf("ps: container id required")
	}
	pids, err := rt(g).Pids(fs.Arg(0))
	if err != nil {
		return err
	}
	if *format == "json" {
		if pids == nil {
			pids = []int{}
		}
		return json.NewEncoder(os.Stdout).Encode(pids)
	}
	if *format != "table" {
		return fmt.Errorf("ps: invalid format %q (table or json)", *format)
	}
	// Like runc: run ps(1) with the remaining arguments and keep the
	// header plus the container's processes.
	psArgs := fs.Args()[1:]
	if len(psArgs) == 0 {
		psArgs = []string{"-ef"}
	}
	out, err := exec.Command("ps", psArgs...).Output()
	if err != nil {
		return fmt.Errorf("ps: %w", err)
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	pidCol := -1
	for i, h := range strings.Fields(lines[0]) {
		if h == "PID" {
			pidCol = i
		}
	}
	if pidCol < 0 {
		return fmt.Errorf("ps: no PID column in ps output")
	}
	in := map[int]bool{}
	for _, p := range pids {
		in[p] = true
	}
	fmt.Println(lines[0])
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) <= pidCol {
			continue
		}
		if p, err := strconv.Atoi(f[pidCol]); err == nil && in[p] {
			fmt.Println(l)
		}
	}
	return nil
}
