//go:build linux

// Command berth-monitor is the per-container monitor (see internal/monitor
// for the contract with the engine). This package only wires flags.
//
// One monitor lives as long as its container, so its memory is paid once
// per running container. It parses its few flags by hand and prints with
// os.Stderr.WriteString: the flag and fmt packages bring reflection, and
// every page of the binary a monitor maps counts against each container.
// For the same reason the Go runtime should not size itself from the
// machine (GOMAXPROCS = CPUs means that many Ps, each with its own caches)
// nor re-check the cgroup limits in the background.
//
//go:debug containermaxprocs=0
//go:debug updatemaxprocs=0
package main

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/monitor"
)

const usage = `usage: berth-monitor --id ID --bundle DIR --runtime PATH --runtime-root DIR --log-path FILE
	[--log-max-size BYTES] [--log-max-file N] [--tty] [--stdin] [--attach-wait]
	[--restart no|always|unless-stopped|on-failure[:N]] [--health FILE] [--stop-signal SIG]
	[--rootfs DIR] [--exit-command PATH [--exit-command-arg ARG]... [--exit-command-lock FILE]]
	[--start-gate]
fd 3, when open, receives "ok <pid>" or "error <message>" (see internal/monitor).
With --start-gate, fd 4 is the start gate: one byte starts the container, EOF aborts.
`

func main() {
	// One P is plenty for a process that copies a few streams; a low GC
	// target keeps the heap near its live size (the default lets it reach
	// 4 MB before the first collection).
	runtime.GOMAXPROCS(1)
	debug.SetGCPercent(20)

	// fd 3 is the ready pipe when the engine passes one.
	var ready *os.File
	if _, err := os.Stat("/proc/self/fd/3"); err == nil {
		ready = os.NewFile(3, "ready")
	}
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		if ready != nil {
			_, _ = ready.WriteString("error " + err.Error() + "\n")
		}
		_, _ = os.Stderr.WriteString("berth-monitor: " + err.Error() + "\n" + usage)
		os.Exit(2)
	}
	if err := monitor.Run(o, ready); errors.Is(err, monitor.ErrStartAborted) {
		os.Exit(1) // the engine gave up the start: nobody to tell
	} else if err != nil {
		_, _ = os.Stderr.WriteString("berth-monitor: " + err.Error() + "\n")
		os.Exit(1)
	}
}

func parseFlags(args []string) (monitor.Options, error) {
	o := monitor.Options{LogMaxFile: 1, Runtime: "berth-runtime", StopSignal: "SIGTERM", Restart: monitor.RestartPolicy{Name: "no"}}
	strs := map[string]*string{
		"id": &o.ID, "bundle": &o.Bundle, "runtime": &o.Runtime, "runtime-root": &o.RuntimeRoot,
		"log-path": &o.LogPath, "health": &o.HealthFile, "stop-signal": &o.StopSignal,
		"rootfs": &o.Rootfs, "exit-command-lock": &o.ExitCommandLock,
	}
	var gate bool
	bools := map[string]*bool{"tty": &o.TTY, "stdin": &o.Stdin, "attach-wait": &o.AttachWait, "start-gate": &gate}
	for i := 0; i < len(args); i++ {
		name, val, hasVal := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		if !strings.HasPrefix(args[i], "-") || name == "" {
			return o, errors.New("unexpected argument " + strconv.Quote(args[i]))
		}
		if b, ok := bools[name]; ok {
			v, err := strconv.ParseBool(val)
			if !hasVal {
				v, err = true, nil
			}
			if err != nil {
				return o, errors.New("--" + name + ": " + err.Error())
			}
			*b = v
			continue
		}
		if !hasVal {
			if i+1 >= len(args) {
				return o, errors.New("--" + name + " needs a value")
			}
			i++
			val = args[i]
		}
		var err error
		switch name {
		case "log-max-size":
			o.LogMaxSize, err = strconv.ParseInt(val, 10, 64)
		case "log-max-file":
			o.LogMaxFile, err = strconv.Atoi(val)
		case "restart":
			o.Restart, err = monitor.ParseRestartPolicy(val)
		case "exit-command":
			o.ExitCommand = append([]string{val}, o.ExitCommand...)
		case "exit-command-arg":
			o.ExitCommand = append(o.ExitCommand, val)
		default:
			p, ok := strs[name]
			if !ok {
				return o, errors.New("unknown flag --" + name)
			}
			*p = val
		}
		if err != nil {
			return o, errors.New("--" + name + ": " + err.Error())
		}
	}
	if gate {
		o.StartGate = os.NewFile(4, "start-gate")
	}
	if o.ID == "" || o.Bundle == "" || o.LogPath == "" || o.RuntimeRoot == "" {
		return o, errors.New("--id, --bundle, --runtime-root and --log-path are required")
	}
	if len(o.ExitCommand) > 0 && !strings.HasPrefix(o.ExitCommand[0], "/") {
		return o, errors.New("--exit-command must be an absolute path")
	}
	if !strings.Contains(o.Runtime, "/") {
		p, err := lookPath(o.Runtime)
		if err != nil {
			return o, err
		}
		o.Runtime = p
	}
	// The monitor works in the bundle directory (see monitor.Run).
	for _, p := range []*string{&o.Bundle, &o.LogPath, &o.HealthFile, &o.RuntimeRoot, &o.Runtime, &o.Rootfs, &o.ExitCommandLock} {
		if *p != "" {
			abs, err := filepath.Abs(*p)
			if err != nil {
				return o, err
			}
			*p = abs
		}
	}
	return o, nil
}

// lookPath is exec.LookPath for the one name the monitor resolves.
func lookPath(name string) (string, error) {
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", errors.New("runtime " + strconv.Quote(name) + " not found in $PATH")
}
