// Command berth-monitor is the per-container monitor (see internal/monitor
// for the contract with the engine). This package only wires flags.
//
// One monitor lives as long as its container, so its memory is paid once
// per running container: the Go runtime should not size itself from the
// machine (GOMAXPROCS = CPUs means that many Ps, each with its own caches)
// nor re-check the cgroup limits in the background.
//
//go:debug containermaxprocs=0
//go:debug updatemaxprocs=0
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"

	"github.com/berth-dev/berth/internal/monitor"
)

func main() {
	// One P is plenty for a process that copies a few streams; the heap
	// target stays small (the default GOGC lets a 4 MB heap grow before the
	// first collection, which would be most of the monitor's RSS).
	runtime.GOMAXPROCS(1)
	debug.SetGCPercent(20)

	o := monitor.Options{LogMaxFile: 1}
	fs := flag.NewFlagSet("berth-monitor", flag.ContinueOnError)
	fs.StringVar(&o.ID, "id", "", "container id")
	fs.StringVar(&o.Bundle, "bundle", "", "bundle directory")
	fs.StringVar(&o.Runtime, "runtime", "berth-runtime", "OCI runtime binary")
	fs.StringVar(&o.RuntimeRoot, "runtime-root", "", "the runtime's --root")
	fs.StringVar(&o.LogPath, "log-path", "", "json-file log")
	fs.Int64Var(&o.LogMaxSize, "log-max-size", 0, "rotate the log at this many bytes (0: never)")
	fs.IntVar(&o.LogMaxFile, "log-max-file", 1, "log files kept with rotation")
	fs.BoolVar(&o.TTY, "tty", false, "give the container a terminal")
	fs.BoolVar(&o.Stdin, "stdin", false, "keep the container's stdin open for attach clients")
	restart := fs.String("restart", "no", "restart policy: no|always|unless-stopped|on-failure[:N]")
	fs.StringVar(&o.HealthFile, "health", "", "health check config (JSON container.HealthConfig)")
	fs.StringVar(&o.StopSignal, "stop-signal", "SIGTERM", "the container's stop signal")
	fs.BoolVar(&o.AttachWait, "attach-wait", false, `write "attach" on fd 3 after create and start once a client attached`)
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	// fd 3 is the ready pipe when the engine passes one.
	var ready *os.File
	if _, err := os.Stat("/proc/self/fd/3"); err == nil {
		ready = os.NewFile(3, "ready")
	}
	fail := func(err error) {
		if ready != nil {
			fmt.Fprintf(ready, "error %v\n", err)
		}
		fmt.Fprintln(os.Stderr, "berth-monitor:", err)
		os.Exit(1)
	}
	var err error
	if o.Restart, err = monitor.ParseRestartPolicy(*restart); err != nil {
		fail(err)
	}
	if o.ID == "" || o.Bundle == "" || o.LogPath == "" || o.RuntimeRoot == "" {
		fail(fmt.Errorf("--id, --bundle, --runtime-root and --log-path are required"))
	}
	if o.Runtime, err = exec.LookPath(o.Runtime); err != nil {
		fail(err)
	}
	// The monitor works in the bundle directory (see monitor.Run).
	for _, p := range []*string{&o.Bundle, &o.LogPath, &o.HealthFile, &o.RuntimeRoot} {
		if *p != "" {
			if *p, err = filepath.Abs(*p); err != nil {
				fail(err)
			}
		}
	}
	if err := monitor.Run(o, ready); err != nil {
		fmt.Fprintln(os.Stderr, "berth-monitor:", err)
		os.Exit(1)
	}
}
