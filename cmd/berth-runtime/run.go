//go:build linux

package main

import (
	"io"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

func cmdRun(g *globals, args []string) error {
	fs := newFlags("run")
	o := createFlags(fs)
	detach := fs.Bool("detach", false, "do not wait for the container to exit")
	fs.BoolVar(detach, "d", false, "do not wait for the container to exit (short)")
	keep := fs.Bool("keep", false, "do not delete the container after it exits")
	if err := fs.Parse(args); err != nil {
		return err
	}
	id, err := oneID(fs)
	if err != nil {
		return err
	}
	r := rt(g)
	// run needs no separate start: the workload goes as soon as it is set up.
	o.AutoStart = true
	if *detach {
		created, err := r.Create(id, o)
		if err != nil {
			return err
		}
		created.Started()
		return nil
	}

	// Foreground: we stay the init's parent, so its exit status comes to us
	// directly from wait4 and cannot be lost.
	terminal, err := o.ReadBundle()
	if err != nil {
		return err
	}
	var ours *os.File
	if terminal && o.ConsoleSocket == "" {
		var theirs *os.File
		if ours, theirs, err = consolePair(); err != nil {
			return err
		}
		defer ours.Close()
		o.Console = theirs
	}
	o.Foreground = true
	sigc := forwardSignals()

	created, err := r.Create(id, o)
	if o.Console != nil {
		o.Console.Close()
	}
	if err != nil {
		return err
	}
	restore := func() {}
	var master *os.File
	if ours != nil {
		if master, err = recvConsole(ours); err != nil {
			_ = created.Delete(true)
			return err
		}
		restore = proxyConsole(master)
	}
	defer restore()
	created.Started()
	copied := make(chan struct{})
	if master != nil {
		go func() { _, _ = io.Copy(os.Stdout, master); close(copied) }()
	} else {
		close(copied)
	}
	status := waitForwarding(created.Cmd, sigc)
	if master != nil {
		<-copied
		master.Close()
	}
	restore()
	if !*keep {
		if err := created.Delete(true); err != nil {
			logError(g, err)
		}
	}
	return exitCode(status)
}

// forwardedSignals are relayed to the container by run and exec. Every
// signal a user or supervisor sends to stop, interrupt or poke a process is
// here; SIGCHLD, SIGURG (the Go scheduler's), SIGPIPE and the synchronous
// fault signals stay ours.
var forwardedSignals = []os.Signal{
	unix.SIGHUP, unix.SIGINT, unix.SIGQUIT, unix.SIGTERM, unix.SIGUSR1, unix.SIGUSR2,
	unix.SIGALRM, unix.SIGCONT, unix.SIGTSTP, unix.SIGTTIN, unix.SIGTTOU, unix.SIGPWR,
	unix.SIGVTALRM, unix.SIGPROF, unix.SIGXCPU, unix.SIGXFSZ, unix.SIGIO, unix.SIGSYS,
}

// forwardSignals starts queueing the signals that run and exec relay.
// Registering a signal handler takes round trips inside the Go runtime, so
// it happens beside the container setup instead of before it; a signal that
// arrives in that instant gets its default action, as with any process
// that has not started yet. Nothing unregisters them: the process exits.
func forwardSignals() chan os.Signal {
	sigc := make(chan os.Signal, 64)
	go signal.Notify(sigc, forwardedSignals...)
	return sigc
}

// waitForwarding waits for cmd while relaying the signals we receive to it,
// and returns a shell-style exit status (128+n for a signal).
func waitForwarding(cmd *exec.Cmd, sigc chan os.Signal) int {
	done := make(chan struct{})
	var state *os.ProcessState
	go func() {
		state, _ = cmd.Process.Wait()
		close(done)
	}()
	for {
		select {
		case <-done:
			return exitStatus(state)
		case s := <-sigc:
			sig, ok := s.(syscall.Signal)
			// SIGCHLD is ours; SIGURG is the Go scheduler's preemption
			// signal; SIGWINCH is handled by the console proxy.
			if !ok || sig == unix.SIGCHLD || sig == unix.SIGURG || sig == unix.SIGWINCH || sig == unix.SIGPIPE {
				continue
			}
			_ = cmd.Process.Signal(sig)
		}
	}
}

func exitStatus(st *os.ProcessState) int {
	if st == nil {
		return 255
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return st.ExitCode()
}
