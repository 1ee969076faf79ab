package engine

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/timing"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// monitorArgs are the flags of berth-monitor for c (internal/monitor's contract).
func (e *Engine) monitorArgs(c *Container) ([]string, error) {
	args := []string{
		"--id", c.ID, "--bundle", e.bundleDir(c.ID),
		"--runtime", e.containerRuntime(c), "--runtime-root", e.runtimeRoot(),
		"--log-path", e.logPath(c.ID),
	}
	if lc := c.HostConfig.LogConfig.Config; lc != nil {
		if v := lc["max-size"]; v != "" {
			n, err := parseSize(v)
			if err != nil {
				return nil, fmt.Errorf("invalid max-size %q: %w", v, errdefs.ErrInvalidArgument)
			}
			args = append(args, "--log-max-size", strconv.FormatInt(n, 10))
		}
		if v := lc["max-file"]; v != "" {
			args = append(args, "--log-max-file", v)
		}
	}
	if c.Config.Tty {
		args = append(args, "--tty")
	}
	if c.Config.OpenStdin {
		args = append(args, "--stdin")
	}
	if rp := c.HostConfig.RestartPolicy; rp.Name != "" && rp.Name != "no" {
		p := string(rp.Name)
		if rp.Name == "on-failure" && rp.MaximumRetryCount > 0 {
			p += ":" + strconv.Itoa(rp.MaximumRetryCount)
		}
		args = append(args, "--restart", p)
	}
	if hc := c.Config.Healthcheck; hc != nil && len(hc.Test) > 0 && hc.Test[0] != "NONE" {
		b, err := json.Marshal(hc)
		if err != nil {
			return nil, err
		}
		f := filepath.Join(e.bundleDir(c.ID), "health.json")
		if err := writeStateFile(f, b, 0o600); err != nil {
			return nil, err
		}
		args = append(args, "--health", f)
	}
	if c.Config.StopSignal != "" {
		args = append(args, "--stop-signal", c.Config.StopSignal)
	}
	// The monitor unmounts the rootfs after the final exit, so an exited
	// container holds no mount whoever (if anyone) looks at it later.
	args = append(args, "--rootfs", e.rootfsDir(c.ID))
	if c.HostConfig.AutoRemove {
		// --rm: the monitor removes the container when it exits, as
		// Docker's daemon does, unless an attached `run --rm` holds the
		// lock and removes it itself (StartAttached).
		if berth := berthCLI(); filepath.IsAbs(berth) {
			args = append(args, "--exit-command", berth)
			for _, a := range []string{"--root", e.opts.Root, "--state", e.opts.State, "rm", "--volumes", c.ID} {
				args = append(args, "--exit-command-arg", a)
			}
			args = append(args, "--exit-command-lock", e.autoRemoveLock(c.ID))
		}
	}
	return args, nil
}

// autoRemoveLock is the file an attached `run --rm` holds (see StartAttached).
func (e *Engine) autoRemoveLock(id string) string {
	return filepath.Join(e.bundleDir(id), "autoremove.lock")
}

// berthCLI is the berth binary the monitor runs to remove a --rm container:
// this process when it is the CLI, else berth beside it (berthd) or in $PATH.
func berthCLI() string {
	if exe, err := os.Executable(); err == nil && filepath.Base(exe) == "berth" {
		return exe
	}
	return findBinary("berth")
}

// volatileOverlay adds overlayfs's "volatile" option to an overlay rootfs:
// the kernel then skips every sync of the upper directory, including the
// syncfs that unmounting it would do (which flushes the whole upper
// filesystem's dirty data, tens of ms on a busy disk). A crash leaves the
// upper directory marked unusable (work/incompat/volatile), which only
// suits a container that is removed when it exits (--rm), as Podman does.
func volatileOverlay(mounts []specs.Mount) []specs.Mount {
	out := make([]specs.Mount, len(mounts))
	for i, m := range mounts {
		if m.Type == "overlay" {
			m.Options = append(append([]string(nil), m.Options...), "volatile")
		}
		out[i] = m
	}
	return out
}

// warmProcessStart runs, in the background and once per process, the
// probe Go's os package makes before its first StartProcess (or
// FindProcess): checking that pidfds work includes a clone of a child that
// exits at once, 0.2-0.5 ms here. Create starts it, so the probe overlaps
// the create work instead of delaying the monitor's fork.
var warmProcessStart = sync.OnceFunc(func() {
	go func() {
		if p, err := os.FindProcess(os.Getpid()); err == nil {
			_ = p.Release()
		}
	}()
})

// pendingMonitor is a monitor forked with a start gate (see
// monitor.Options.StartGate): set up, waiting for the engine to finish the
// bundle before it runs the runtime.
type pendingMonitor struct {
	cmd   *exec.Cmd
	ready *os.File // read end of fd 3
	gate  *os.File // write end of fd 4
	name  string
}

// forkMonitor execs berth-monitor detached (its own session, stdio on
// /dev/null) with a start gate: the caller mounts the rootfs and writes
// config.json while the monitor starts, then calls release (or abort).
func (e *Engine) forkMonitor(c *Container) (*pendingMonitor, error) {
	args, err := e.monitorArgs(c)
	if err != nil {
		return nil, err
	}
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	gateR, gateW, err := os.Pipe()
	if err != nil {
		readyR.Close()
		readyW.Close()
		return nil, err
	}
	cmd := exec.Command(e.monitorPath(), append(args, "--start-gate")...)
	cmd.ExtraFiles = []*os.File{readyW, gateR}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Dir = "/"
	if timing.On {
		cmd.Stderr = os.Stderr // the monitor's stage lines
	}
	// An empty monitor.pid before the fork covers a CLI killed between the
	// fork and the pid's write below (see startingMonitor).
	_ = writeStateFile(e.monitorPidFile(c.ID), nil, 0o600)
	Mark("start: exec monitor")
	err = cmd.Start()
	readyW.Close()
	gateR.Close()
	if err != nil {
		readyR.Close()
		gateW.Close()
		return nil, fmt.Errorf("start monitor: %w", err)
	}
	Mark("start: monitor forked")
	// Until the monitor writes monitor.json, this file is the only trace
	// of it: a CLI killed now leaves a monitor that either waits at its
	// gate (and exits when the gate's EOF tells it we are gone) or starts
	// the container, which rm and stop must wait for rather than remove
	// its bundle under it (see Engine.settledState).
	_ = writeStateFile(e.monitorPidFile(c.ID), []byte(strconv.Itoa(cmd.Process.Pid)), 0o600)
	// The monitor outlives us; reap it if it exits while we still run
	// (berthd), so it never lingers as a zombie.
	go func() { _ = cmd.Wait() }()
	return &pendingMonitor{cmd: cmd, ready: readyR, gate: gateW, name: c.Name}, nil
}

// abort closes the gate unreleased: the monitor exits without starting
// anything. abort waits (briefly) for that, so a failed start leaves no
// monitor behind that a retry could race.
func (p *pendingMonitor) abort() {
	p.gate.Close()
	_ = p.ready.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, _ = io.Copy(io.Discard, p.ready) // EOF when the monitor exits
	p.ready.Close()
}

// release opens the gate and waits for the monitor's ready line: "ok" once
// the workload runs, or the start's error with Docker's exit code.
func (p *pendingMonitor) release(ctx context.Context) error {
	defer p.ready.Close()
	// A monitor that died before its gate makes this write fail (EPIPE);
	// its ready pipe tells why.
	_, _ = p.gate.Write([]byte{1})
	p.gate.Close()
	Mark("start: monitor released")
	type result struct {
		line string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		line, err := bufio.NewReader(p.ready).ReadString('\n')
		done <- result{line, err}
	}()
	var res result
	select {
	case res = <-done:
	case <-ctx.Done():
		_ = p.cmd.Process.Kill()
		return ctx.Err()
	}
	line := strings.TrimSpace(res.line)
	switch {
	case strings.HasPrefix(line, "ok "):
		return nil
	case strings.HasPrefix(line, "error "):
		return startError(strings.TrimPrefix(line, "error "))
	}
	_ = p.cmd.Process.Kill()
	return &ExitError{Code: 125, Msg: fmt.Sprintf("monitor for %s exited before the container started (%q)", p.name, line)}
}

// startError maps the runtime's message to Docker's exit codes.
func startError(msg string) error {
	switch {
	case strings.Contains(msg, "executable file not found"), strings.Contains(msg, "no such file or directory"):
		return &ExitError{Code: 127, Msg: msg}
	case strings.Contains(msg, "permission denied"), strings.Contains(msg, "is a directory"):
		return &ExitError{Code: 126, Msg: msg}
	}
	return &ExitError{Code: 125, Msg: msg}
}

func (e *Engine) monitorPath() string {
	if p := os.Getenv("BERTH_MONITOR"); p != "" {
		return p
	}
	return findBinary("berth-monitor")
}
