package monitor

import (
	"os"
	"strconv"
	"strings"
	"time"
)

// Options are berth-monitor's flags (see the package documentation).
type Options struct {
	ID          string
	Bundle      string // absolute bundle directory; the monitor's files live here
	Runtime     string // OCI runtime binary
	RuntimeRoot string // the runtime's --root
	LogPath     string
	LogMaxSize  int64 // bytes; 0: no rotation
	LogMaxFile  int   // files kept with rotation (default 1)
	TTY         bool
	Stdin       bool
	Restart     RestartPolicy
	HealthFile  string
	StopSignal  string
	// AttachWait: after `runtime create`, write "attach\n" to the ready pipe
	// and start the workload only once the first attach.sock client has
	// connected (or after AttachWaitTimeout), so a foreground `run` sees
	// the container's first byte of output.
	AttachWait bool
	// Rootfs, when set, is unmounted (every mount at or below it) after
	// each exit, once `runtime delete` ran: an exited container holds no
	// mount, and the engine mounts it again on the next start.
	Rootfs string
	// ExitCommand (argv) runs once after the container exited for good
	// (not after a failed first start, which the engine handles): the
	// engine sets it to `berth rm` for --rm, so `run -d --rm` removes
	// itself. With ExitCommandLock set, the monitor opens (creating) that
	// file when it starts, and at the end tries a non-blocking exclusive
	// flock of it: the command is skipped when another process holds it
	// or the file is gone. An attached `run --rm` holds it shared and
	// removes the container (bundle and lock file included) itself,
	// without the cost of a second berth process.
	ExitCommand     []string
	ExitCommandLock string
	// StartGate, when set, is the read end of a pipe the engine holds: the
	// monitor sets itself up (log, sockets) and then waits for one byte on
	// it before it runs the runtime, so the engine can fork the monitor
	// while it still mounts the rootfs and writes config.json (the
	// monitor's exec and start-up overlap them). EOF without a byte means
	// the engine gave up (a failed start, or it was killed): the monitor
	// exits without starting anything and without writing monitor.json.
	// berth-monitor takes it as fd 4 with --start-gate.
	StartGate *os.File
}

// AttachWaitTimeout bounds how long --attach-wait waits for a client.
const AttachWaitTimeout = 30 * time.Second

// RestartPolicy is Docker's HostConfig.RestartPolicy.
type RestartPolicy struct {
	Name       string // "no", "always", "unless-stopped", "on-failure"
	MaxRetries int    // on-failure only; 0: unlimited
}

// ParseRestartPolicy parses --restart: no|always|unless-stopped|on-failure[:N].
func ParseRestartPolicy(s string) (RestartPolicy, error) {
	name, max, hasMax := strings.Cut(s, ":")
	switch name {
	case "", "no":
		if hasMax {
			break
		}
		return RestartPolicy{Name: "no"}, nil
	case "always", "unless-stopped":
		if hasMax {
			break
		}
		return RestartPolicy{Name: name}, nil
	case "on-failure":
		p := RestartPolicy{Name: name}
		if hasMax {
			n, err := strconv.Atoi(max)
			if err != nil || n < 0 {
				return RestartPolicy{}, invalid("restart policy " + quote(s) + ": maximum retry count must be a non-negative integer")
			}
			p.MaxRetries = n
		}
		return p, nil
	}
	return RestartPolicy{}, invalid("restart policy " + quote(s) + ": want no, always, unless-stopped or on-failure[:N]")
}

func (p RestartPolicy) String() string {
	if p.Name == "on-failure" && p.MaxRetries > 0 {
		return p.Name + ":" + strconv.Itoa(p.MaxRetries)
	}
	if p.Name == "" {
		return "no"
	}
	return p.Name
}

// shouldRestart is Docker's restart manager decision after an exit.
func (p RestartPolicy) shouldRestart(exitCode, restartCount int, userStopped bool) bool {
	if userStopped {
		return false
	}
	switch p.Name {
	case "always", "unless-stopped":
		return true
	case "on-failure":
		return exitCode != 0 && (p.MaxRetries == 0 || restartCount < p.MaxRetries)
	}
	return false
}

// Docker's restart back-off: 100 ms, doubling up to a minute, back to 100 ms
// after a run of 10 s or more.
const (
	backoffInitial = 100 * time.Millisecond
	backoffMax     = time.Minute
	backoffReset   = 10 * time.Second
)

func nextBackoff(prev, ran time.Duration) time.Duration {
	if ran >= backoffReset {
		prev = 0
	}
	switch {
	case prev == 0:
		prev = backoffInitial
	case prev < backoffMax:
		prev *= 2
	}
	return min(prev, backoffMax)
}

// Request is one control.sock request.
type Request struct {
	Op     string `json:"op"` // "resize", "stop", "state", "wait"
	Height uint16 `json:"height,omitempty"`
	Width  uint16 `json:"width,omitempty"`
}

// Reply answers a resize or stop request; "state" is answered with State.
type Reply struct {
	Error string `json:",omitempty"`
}
