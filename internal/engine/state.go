package engine

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/monitor"
)

// Paths of a container's files.
func (e *Engine) bundleDir(id string) string   { return filepath.Join(e.opts.State, "containers", id) }
func (e *Engine) rootfsDir(id string) string   { return filepath.Join(e.bundleDir(id), "rootfs") }
func (e *Engine) runtimeRoot() string          { return filepath.Join(e.opts.State, "runtime") }
func (e *Engine) recordDir(id string) string   { return filepath.Join(e.containersDir(), id) }
func (e *Engine) logPath(id string) string     { return filepath.Join(e.recordDir(id), id+"-json.log") }
func (e *Engine) monitorFile(id string) string { return filepath.Join(e.bundleDir(id), "monitor.json") }

// monitorPidFile holds the pid of a monitor the engine forked, written
// before the monitor's own monitor.json exists.
func (e *Engine) monitorPidFile(id string) string {
	return filepath.Join(e.bundleDir(id), "monitor.pid")
}

// startingMonitor returns the pid of a monitor that was forked but has not
// written monitor.json yet (0 when there is none alive). forking is true
// while monitor.pid is still the empty marker of a start killed around the
// fork and no monitor of the bundle shows in /proc yet: a forked child may
// still be on its way to exec berth-monitor, so callers wait a little.
func (e *Engine) startingMonitor(id string) (pid int, forking bool) {
	f := e.monitorPidFile(id)
	b, err := os.ReadFile(f)
	if err != nil {
		return 0, false
	}
	if len(b) > 0 {
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || !alive(pid) {
			return 0, false
		}
		return pid, false
	}
	if pid := findMonitorProc(e.bundleDir(id)); pid > 0 {
		return pid, false
	}
	fi, err := os.Stat(f)
	return 0, err == nil && time.Since(fi.ModTime()) < forkGrace
}

// forkGrace is how long after a start's fork a monitor may take to show in
// /proc under its own name (an exec; far less in practice).
const forkGrace = time.Second

// ContainerState is a container's live state as the engine derives it.
type ContainerState struct {
	monitor.State
	// Paused is true while the container's cgroup is frozen.
	Paused bool
	// MonitorAlive is false when the monitor died (kill -9): the
	// container may still run, supervised by nobody until it exits.
	MonitorAlive bool
}

// Running reports whether the workload is running (paused included).
func (s ContainerState) Running() bool { return s.Status == "running" }

// readMonitorState reads monitor.json; ok is false when there is none.
func (e *Engine) readMonitorState(id string) (monitor.State, bool) {
	var st monitor.State
	b, err := os.ReadFile(e.monitorFile(id))
	if err != nil {
		return st, false
	}
	if json.Unmarshal(b, &st) != nil {
		return st, false
	}
	return st, true
}

// state derives the container's status from its record, monitor.json and
// a liveness check of the monitor and of the init: no runtime exec, so
// `ps` over hundreds of containers stays cheap, and a monitor killed with
// SIGKILL or a crash never makes the answer lie.
func (e *Engine) state(c *Container) ContainerState {
	st, ok := e.readMonitorState(c.ID)
	if !ok {
		if pid, _ := e.startingMonitor(c.ID); pid > 0 {
			// A start whose CLI was killed: its monitor is still
			// creating the container.
			return ContainerState{State: monitor.State{Status: "created", MonitorPid: pid}, MonitorAlive: true}
		}
		// Never started, or the state directory was lost (a reboot
		// clears /run): the last state the engine recorded stands.
		if c.LastState != nil {
			ls := *c.LastState
			if ls.Status != "exited" && ls.Status != "created" {
				ls.Status, ls.Pid = "exited", 0
			}
			return ContainerState{State: ls}
		}
		return ContainerState{State: monitor.State{Status: "created"}}
	}
	cs := ContainerState{State: st, MonitorAlive: alive(st.MonitorPid)}
	if st.Status == "exited" || st.Status == "created" && st.Pid == 0 && !cs.MonitorAlive {
		cs.Pid = 0
		return cs
	}
	if cs.MonitorAlive {
		cs.Paused = cs.Status == "running" && c.Paused
		return cs
	}
	// The monitor is gone without writing its final state.
	if st.Pid > 0 && alive(st.Pid) {
		cs.Status = "running"
		cs.Paused = c.Paused
		return cs
	}
	// Nobody saw the exit: Docker records 137 for a container whose
	// supervisor was killed.
	cs.Status, cs.Pid = "exited", 0
	if cs.ExitCode == 0 {
		cs.ExitCode = 137
	}
	if cs.FinishedAt.IsZero() || cs.FinishedAt.Before(cs.StartedAt) {
		if fi, err := os.Stat(e.monitorFile(c.ID)); err == nil {
			cs.FinishedAt = fi.ModTime().UTC()
		} else {
			cs.FinishedAt = time.Now().UTC()
		}
	}
	return cs
}

// writeMonitorState records a state the engine observed itself (the
// monitor being dead), so later readers agree.
func (e *Engine) writeMonitorState(id string, st monitor.State) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	err = writeFileAtomic(e.monitorFile(id), b, 0o600)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}
