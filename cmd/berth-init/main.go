// Command berth-init is the tiny init `berth run --init` puts in front of a
// container's command (mounted read-only at /sbin/berth-init, run as
// `berth-init -- CMD ARGS...`), doing what Docker's tini does:
//
//   - it is PID 1, so the kernel ignores signals it has no handler for; it
//     installs handlers and forwards every signal to the command, so SIGTERM
//     from `berth stop` reaches a program that never expected to be PID 1;
//   - it reaps every child the kernel re-parents to it (daemons that
//     double-fork, shells that do not wait), so no zombie outlives its use;
//   - it exits with the command's status (128+N when killed by signal N).
//
// It is static and uses only the Go standard library and x/sys: it runs in
// images that have no libc of ours.
package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "berth-init: usage: berth-init -- COMMAND [ARG...]")
		return 125
	}
	// Catch signals before the child exists, so none sent in between is lost.
	sigs := make(chan os.Signal, 32)
	signal.Notify(sigs)
	path, err := exec.LookPath(args[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "berth-init: exec %s: %v\n", args[0], err)
		if errors.Is(err, os.ErrPermission) {
			return 126
		}
		return 127
	}
	// The child gets default signal dispositions back (Go resets handled
	// signals on exec) and the same process group, so a terminal's
	// job-control signals reach it directly too.
	proc, err := os.StartProcess(path, args, &os.ProcAttr{
		Env:   os.Environ(),
		Files: []*os.File{os.Stdin, os.Stdout, os.Stderr},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "berth-init: exec %s: %v\n", args[0], err)
		if errors.Is(err, os.ErrPermission) {
			return 126
		}
		return 127
	}
	child := proc.Pid
	for sig := range sigs {
		switch sig {
		case unix.SIGCHLD:
			if code, done := reap(child); done {
				return code
			}
		case unix.SIGURG:
			// The Go runtime's own preemption signal: not the user's.
		default:
			_ = unix.Kill(child, sig.(syscall.Signal))
		}
	}
	return 0
}

// reap collects every exited child without blocking and reports the main
// child's exit code once it is among them.
func reap(child int) (code int, done bool) {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil || pid <= 0 {
			return code, done
		}
		if pid == child {
			done = true
			switch {
			case ws.Exited():
				code = ws.ExitStatus()
			case ws.Signaled():
				code = 128 + int(ws.Signal())
			}
		}
	}
}
