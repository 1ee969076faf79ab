// Package monitor is the per-container monitor: the small process that
// owns a container's lifetime after the CLI or berthd has gone.
//
// The engine and the monitor meet only through the files and sockets below
// (Options, Request, Reply, State and the file names are exported for the
// engine's side).
//
// Start. The engine writes the bundle (<state>/containers/<id>/config.json,
// rootfs mounted) and execs `berth-monitor` (cmd/berth-monitor, a small
// static binary: RSS per container is benchmarked against podman's conmon,
// ~2.1 MB) in a new session, detached, with fd 3 the write end of a "ready"
// pipe and flags:
//
//	--id ID --bundle DIR --runtime PATH --runtime-root DIR
//	--log-path FILE [--log-max-size BYTES] [--log-max-file N]   (json-file logs)
//	[--tty] [--stdin] [--restart no|always|unless-stopped|on-failure[:N]]
//	[--health FILE]  (JSON container.HealthConfig from the Docker API types)
//	[--stop-signal SIG]  (accepted and reserved: the engine stops containers)
//	[--attach-wait]  (see below)
//	[--rootfs DIR]   (unmounted after the final exit)
//	[--exit-command PATH [--exit-command-arg ARG]... [--exit-command-lock FILE]]
//
//	[--start-gate]   (fd 4: wait for one byte before starting; EOF aborts)
//
// With --start-gate the engine forks the monitor before the bundle is
// complete: the monitor sets itself up (log, sockets) and then waits for one
// byte on fd 4, which the engine writes once config.json and the rootfs are
// in place; the monitor's exec and Go start-up, a few milliseconds, overlap
// the engine's mount and spec work. EOF on fd 4 without the byte (the
// engine's start failed, or it was killed) makes the monitor exit without
// starting anything or writing monitor.json.
//
// The monitor becomes a child subreaper, creates and starts the container
// with one `runtime run --detach` (stdio: pipes it owns; with --tty a pty
// received over a console socket; runc's command line, so runc and crun
// work too), and then writes one line to fd 3:
// "ok <pid>\n" when the workload runs, or "error <message>\n" (and exits)
// when it could not start — the message is the runtime's own error, so the
// engine can map "executable file not found" to 127 and "permission
// denied" to 126. fd 3 is closed after that line.
//
// With --attach-wait (a client that must not miss the container's first
// output) the monitor runs `runtime create` and writes "attach\n" on fd 3
// once the container is created and attach.sock listens, `runtime start`s
// the workload
// when the first attach client has connected (or after AttachWaitTimeout),
// and then writes "ok <pid>\n" as above.
//
// Files in the bundle directory while the monitor lives (all written
// atomically, temp + rename):
//
//	monitor.json  State (below), rewritten on every change
//	attach.sock   stdio: a client connecting receives the container's output
//	              from now on — raw bytes for a tty, otherwise Docker's
//	              stdcopy frames (8-byte header: stream 1=stdout 2=stderr,
//	              3 zero bytes, uint32 big-endian length). Bytes the client
//	              writes go to the container's stdin (when --stdin); the
//	              client's half-close (shutdown SHUT_WR) closes stdin.
//	              The socket is closed for all clients when the container exits
//	              (after all output is delivered), which is how attach ends.
//	control.sock  JSON requests (Request), one per connection, one JSON
//	              reply: State for "state", otherwise Reply ({} or
//	              {"Error":"message"}):
//	              {"op":"resize","height":H,"width":W}
//	              {"op":"stop"}   marks the stop as user-requested (no restart),
//	                              the engine then kills through the runtime
//	              {"op":"state"}  replies with State
//	              {"op":"wait"}   replies with State once an exit is
//	                              recorded (at once if the final one is)
//
// Restart policies are enforced here, by the monitor, not by berthd: the
// monitor outlives the CLI and berthd, and it is the process that sees the
// exit first. RestartCount counts restarts; Status is "restarting" during
// the back-off.
//
// Exit. When the init exits the monitor drains and flushes its output and
// decides between a restart (restart policy; user stop never restarts;
// Docker's back-off: 100 ms doubling, reset after 10 s of running) and the
// end. For a restart it runs `runtime delete` (the restart reuses the id)
// and then writes monitor.json with Status "restarting". At the end it
// unmounts --rootfs and then writes monitor.json once with ExitCode
// (128+signal for signals), FinishedAt, OOMKilled (the cgroup's OOM kill
// count went up) and Status "exited"; only then are the attach clients
// closed, so what they read next is final. After the final record the
// monitor removes its sockets, runs `runtime delete` (so a waiting `run`
// does not wait for that process too), and then the exit command, if any,
// before it exits: the engine passes `berth --root R --state S rm
// --volumes ID` for --rm (conmon's --exit-command), so `run -d --rm`
// removes itself. With --exit-command-lock the monitor opens FILE
// (creating it) at its start, and at the end tries a non-blocking
// exclusive flock of it; it leaves the command out when the lock is held
// or the file is gone: an attached `run --rm` holds it shared and removes
// the container in process, which saves a berth process on the path users
// time. A monitor alive with Status "exited" is only finishing: the engine
// treats the container as stopped, waits for the monitor before starting
// it again, and before removing the bundle waits until the runtime's state
// of the container (<runtime-root>/<id>) is gone or the monitor exited.
// Once delete is done the monitor writes nothing more into the bundle,
// except monitor.json's Error when delete failed.
//
// Durability: monitor.json and the bundle live in the state directory
// (/run, tmpfs), written atomically (rename) and never fsynced.
// Health checks (--health) run `runtime exec` on schedule and update
// State.Health like Docker (starting/healthy/unhealthy, FailingStreak, last 5
// results).
//
// If the monitor itself is killed, the container keeps running; the
// engine sees MonitorPid dead and Pid alive and reports the container as
// running (exit code unknown afterwards: it records 137 after a kill).
// Nobody drains its output then: a workload that writes to stdout gets
// EPIPE/SIGPIPE, and a tty container's session gets SIGHUP when the pty
// master closes (as with conmon).
//
// Memory. berth-monitor keeps its binary small (no encoding/json, fmt,
// flag or net: hand-written JSON for the few flat documents it handles),
// runs with GOMAXPROCS=1 and GOGC=20, waits for children through pidfds in
// Go's poller (no thread parked in a SIGCHLD loop), and once the container
// runs returns freed heap and drops the mappings of its read-only pages
// (again after every GC cycle). Measured here (TestIdleRSS, `sleep`
// containers): VmRSS 1.9–2.1 MB, 2.1 MB after the idle forced GC, of which
// 0.9–1.2 MB anonymous; PSS 1.1–1.3 MB, since the binary's pages are shared
// by every monitor (conmon: ~2.1 MB VmRSS).
package monitor

import "time"

// State is monitor.json.
type State struct {
	MonitorPid   int
	Pid          int    // the container's init (host pid), 0 when not running
	Status       string // "created", "running", "restarting", "exited"
	StartedAt    time.Time
	FinishedAt   time.Time
	ExitCode     int
	OOMKilled    bool
	Error        string
	RestartCount int
	UserStopped  bool
	Health       *Health `json:",omitempty"`
}

// Health mirrors the Docker API's container.Health.
type Health struct {
	Status        string // "starting", "healthy", "unhealthy"
	FailingStreak int
	Log           []HealthResult
}

// HealthResult is one probe.
type HealthResult struct {
	Start    time.Time
	End      time.Time
	ExitCode int
	Output   string
}
