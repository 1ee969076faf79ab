//go:build linux

// Command berth-runtime is an OCI runtime with runc's command line, so that
// containerd, Kubernetes tooling and the OCI conformance suite can drive it.
// This package only wires flags to internal/runtime; one file per command.
//
// The runtime is a short-lived command: it neither needs the Go runtime to
// size GOMAXPROCS from cgroup limits at start-up (files read on every run)
// nor to re-check them in the background.
//
//go:debug containermaxprocs=0
//go:debug updatemaxprocs=0
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	goruntime "runtime"
	"sort"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/linux/nsenter" // the process entry point joins namespaces before Go starts
	"github.com/berth-dev/berth/internal/runtime"
)

func init() {
	// The main goroutine keeps the main thread. The container init keeps
	// all its per-thread state (credentials, capabilities, seccomp, cgroup
	// namespace) there until it calls execve; the command-line side hands
	// per-thread work (joining namespaces, forking into a cgroup) to
	// threads it then discards, which must never be the main thread, since
	// Go cannot discard that one.
	goruntime.LockOSThread()
	if len(os.Args) > 1 && os.Args[1] == runtime.InitArg {
		goruntime.GOMAXPROCS(1)
	}
}

// globals are runc's global options.
type globals struct {
	root      string
	log       string
	logFormat string
	debug     bool
}

type command struct {
	summary string
	run     func(g *globals, args []string) error
}

var commands = map[string]command{
	"create":   {"create a container", cmdCreate},
	"start":    {"start a created container", cmdStart},
	"run":      {"create and start a container", cmdRun},
	"state":    {"print the state of a container", cmdState},
	"kill":     {"send a signal to a container's init", cmdKill},
	"delete":   {"delete a container", cmdDelete},
	"exec":     {"run a process in a container", cmdExec},
	"ps":       {"list the processes in a container", cmdPs},
	"list":     {"list containers", cmdList},
	"pause":    {"freeze every process of a container", cmdPause},
	"resume":   {"thaw a paused container", cmdResume},
	"events":   {"print container events and statistics", cmdEvents},
	"update":   {"change a container's resource limits", cmdUpdate},
	"spec":     {"write a default config.json", cmdSpec},
	"features": {"print the features this runtime supports", cmdFeatures},
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == runtime.InitArg {
		err := nsenter.Unhandled()
		if err == nil {
			err = runtime.Init()
		}
		if !errors.Is(err, runtime.ErrReported) {
			fmt.Fprintf(os.Stderr, "berth-runtime init: %v\n", err)
		}
		os.Exit(1)
	}
	os.Exit(mainExit(os.Args[1:]))
}

func mainExit(args []string) int {
	runtime.Mark("main")
	g := &globals{}
	fs := flag.NewFlagSet("berth-runtime", flag.ContinueOnError)
	fs.StringVar(&g.root, "root", defaultRoot(), "state directory")
	fs.StringVar(&g.log, "log", "", "log file (default stderr)")
	fs.StringVar(&g.logFormat, "log-format", "text", "log format: text or json")
	fs.BoolVar(&g.debug, "debug", false, "debug logging")
	var ignoredBool bool
	var ignoredStr string
	fs.BoolVar(&ignoredBool, "systemd-cgroup", false, "not supported: the cgroupfs driver is always used")
	fs.StringVar(&ignoredStr, "criu", "", "not supported")
	fs.StringVar(&ignoredStr, "rootless", "auto", "ignored")
	var version bool
	fs.BoolVar(&version, "version", false, "print the version")
	fs.BoolVar(&version, "v", false, "print the version")
	fs.Usage = func() { usage(fs) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 1
	}
	if version {
		fmt.Printf("berth-runtime version %s\nspec: %s\n", runtimeVersion, specVersion())
		return 0
	}
	rest := fs.Args()
	if len(rest) == 0 {
		usage(fs)
		return 1
	}
	if rest[0] == "help" || rest[0] == "--help" || rest[0] == "-h" {
		usage(fs)
		return 0
	}
	cmd, ok := commands[rest[0]]
	if !ok {
		logError(g, fmt.Errorf("unknown command %q", rest[0]))
		return 1
	}
	if err := cmd.run(g, rest[1:]); err != nil {
		var ec exitCode
		if errors.As(err, &ec) {
			return int(ec)
		}
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		logError(g, err)
		return 1
	}
	return 0
}

// exitCode is returned by commands that exit with the workload's status.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

const runtimeVersion = "0.1.0"

func defaultRoot() string {
	if v := os.Getenv("XDG_RUNTIME_DIR"); v != "" && os.Geteuid() != 0 {
		return v + "/berth-runtime"
	}
	return "/run/berth-runtime"
}

func usage(fs *flag.FlagSet) {
	w := fs.Output()
	fmt.Fprintln(w, "usage: berth-runtime [global options] command [options] [arguments]")
	fmt.Fprintln(w, "\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-9s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nglobal options:")
	fs.PrintDefaults()
}

// logError reports err on stderr and, with --log, in the log file; in json
// format it is the line containerd's shim reads back as the error.
func logError(g *globals, err error) {
	msg := err.Error()
	// A caller that asks for a JSON log (containerd's shim, berth's engine)
	// reads errors from it and reports them itself; stderr belongs to the
	// container there. Everyone else gets the message on stderr too, as runc does.
	if g.log == "" || g.logFormat != "json" {
		fmt.Fprintln(os.Stderr, "berth-runtime:", msg)
	}
	if g.log == "" {
		return
	}
	f, ferr := os.OpenFile(g.log, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if ferr != nil {
		return
	}
	defer f.Close()
	writeLog(f, g.logFormat, "error", msg)
}

func writeLog(w io.Writer, format, level, msg string) {
	now := time.Now().UTC().Format(time.RFC3339Nano)
	if format == "json" {
		_ = json.NewEncoder(w).Encode(map[string]string{"level": level, "msg": msg, "time": now})
		return
	}
	fmt.Fprintf(w, "time=%q level=%s msg=%q\n", now, level, strings.TrimSpace(msg))
}

// newFlags makes a command's flag set; errors go to stderr once.
func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	return fs
}

// oneID checks that exactly one container id was given.
func oneID(fs *flag.FlagSet) (string, error) {
	if fs.NArg() != 1 {
		return "", fmt.Errorf("%s: expected exactly one container id, got %d arguments", fs.Name(), fs.NArg())
	}
	return fs.Arg(0), nil
}

func rt(g *globals) *runtime.Runtime { return &runtime.Runtime{Root: g.root} }
