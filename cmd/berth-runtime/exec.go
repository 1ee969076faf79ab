//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/runtime"
)

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func cmdExec(g *globals, args []string) error {
	fs := newFlags("exec")
	o := &runtime.ExecOptions{}
	var processFile, cwd, userSpec string
	var envs, capsAdd, gids stringList
	var tty, noNewPrivs bool
	var ignored string
	fs.StringVar(&processFile, "process", "", "path to a process.json (overrides the other process flags)")
	fs.StringVar(&processFile, "p", "", "path to a process.json (short)")
	fs.StringVar(&o.ConsoleSocket, "console-socket", "", "unix socket that receives the terminal's master fd")
	fs.StringVar(&o.PidFile, "pid-file", "", "write the process's pid to this file")
	fs.BoolVar(&o.Detach, "detach", false, "do not wait for the process to exit")
	fs.BoolVar(&o.Detach, "d", false, "do not wait for the process to exit (short)")
	fs.StringVar(&cwd, "cwd", "", "working directory")
	fs.StringVar(&userSpec, "user", "", "uid[:gid]")
	fs.StringVar(&userSpec, "u", "", "uid[:gid] (short)")
	fs.Var(&envs, "env", "environment variable KEY=VALUE (repeatable)")
	fs.Var(&envs, "e", "environment variable (short)")
	fs.Var(&capsAdd, "cap", "add a capability (repeatable)")
	fs.Var(&capsAdd, "c", "add a capability (short)")
	fs.Var(&gids, "additional-gids", "additional gid (repeatable)")
	fs.Var(&gids, "g", "additional gid (short)")
	fs.BoolVar(&tty, "tty", false, "allocate a terminal")
	fs.BoolVar(&tty, "t", false, "allocate a terminal (short)")
	fs.BoolVar(&noNewPrivs, "no-new-privs", false, "set no_new_privs")
	fs.IntVar(&o.PreserveFds, "preserve-fds", 0, "number of extra fds (from 3) passed to the process")
	fs.StringVar(&ignored, "process-label", "", "ignored: no SELinux on this host")
	fs.StringVar(&ignored, "apparmor", "", "ignored: no AppArmor on this host")
	var ignoredBool bool
	fs.BoolVar(&ignoredBool, "ignore-paused", false, "ignored")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() < 1 {
		return fmt.Errorf("exec: container id required")
	}
	id := fs.Arg(0)
	r := rt(g)
	c, err := r.Load(id)
	if err != nil {
		return err
	}
	if processFile != "" {
		p := &specs.Process{}
		data, err := readFileOrStdin(processFile)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(data, p); err != nil {
			return fmt.Errorf("parse %s: %w", processFile, err)
		}
		o.Process = p
	} else {
		// runc semantics: start from the container's own process and
		// override what the flags give.
		spec, err := c.Spec()
		if err != nil {
			return err
		}
		base := *spec.Process
		p := &base
		p.Args = fs.Args()[1:]
		if len(p.Args) == 0 {
			return fmt.Errorf("exec: command required")
		}
		p.Env = append(append([]string{}, p.Env...), envs...)
		p.Terminal = tty
		if cwd != "" {
			p.Cwd = cwd
		}
		if userSpec != "" {
			u, err := parseUser(userSpec)
			if err != nil {
				return err
			}
			p.User.UID, p.User.GID = u.UID, u.GID
		}
		for _, gs := range gids {
			n, err := strconv.ParseUint(gs, 10, 32)
			if err != nil {
				return fmt.Errorf("exec: invalid gid %q", gs)
			}
			p.User.AdditionalGids = append(p.User.AdditionalGids, uint32(n))
		}
		if noNewPrivs {
			p.NoNewPrivileges = true
		}
		if len(capsAdd) > 0 && p.Capabilities != nil {
			cp := *p.Capabilities
			cp.Bounding = append(append([]string{}, cp.Bounding...), capsAdd...)
			cp.Effective = append(append([]string{}, cp.Effective...), capsAdd...)
			cp.Permitted = append(append([]string{}, cp.Permitted...), capsAdd...)
			p.Capabilities = &cp
		}
		o.Process = p
	}
	if o.Detach || !o.Process.Terminal || o.ConsoleSocket != "" {
		cmd, err := r.Exec(id, o)
		if err != nil {
			return err
		}
		if o.Detach {
			return nil
		}
		return exitCode(waitForwarding(cmd, forwardSignals()))
	}
	// Foreground with a terminal we own.
	ours, theirs, err := consolePair()
	if err != nil {
		return err
	}
	defer ours.Close()
	o.Console = theirs
	sigc := forwardSignals()
	cmd, err := r.Exec(id, o)
	theirs.Close()
	if err != nil {
		return err
	}
	master, err := recvConsole(ours)
	if err != nil {
		return err
	}
	restore := proxyConsole(master)
	copied := make(chan struct{})
	go func() { _, _ = io.Copy(os.Stdout, master); close(copied) }()
	status := waitForwarding(cmd, sigc)
	<-copied
	restore()
	return exitCode(status)
}

func parseUser(s string) (*specs.User, error) {
	uidS, gidS, _ := strings.Cut(s, ":")
	uid, err := strconv.ParseUint(uidS, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("invalid user %q: want uid[:gid]", s)
	}
	u := &specs.User{UID: uint32(uid)}
	if gidS != "" {
		gid, err := strconv.ParseUint(gidS, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("invalid user %q: want uid[:gid]", s)
		}
		u.GID = uint32(gid)
	}
	return u, nil
}

func readFileOrStdin(path string) ([]byte, error) {
	if path == "-" {
		return io.ReadAll(os.Stdin)
	}
	return os.ReadFile(path)
}
