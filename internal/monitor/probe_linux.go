package monitor

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// probeLoop runs the health check of one instance on schedule until the
// instance exits. Like Docker, the first probe runs one interval after the
// start, never at once.
func (m *monitor) probeLoop(inst *instance, startedAt time.Time) {
	defer close(inst.probeDone)
	hc := m.health
	args, _ := hc.probeArgs() // validated by readHealthConfig
	for {
		st := m.snapshot()
		t := time.NewTimer(hc.nextProbe(st.Health, startedAt, time.Now()))
		select {
		case <-inst.stopProbe:
			t.Stop()
			return
		case <-t.C:
		}
		r := m.probe(args, hc.timeout())
		select {
		case <-inst.stopProbe:
			// The container exited during the probe: its result says
			// nothing about the container's health.
			return
		default:
		}
		m.update(func(s *State) {
			if s.Health == nil {
				s.Health = &Health{Status: HealthStarting}
			}
			hc.record(s.Health, r, startedAt)
		})
	}
}

// probe runs one health check through `runtime exec`, its output (stdout
// and stderr together, as Docker shows it) captured in a file: a pipe would
// need a reader goroutine for a probe that runs a few times a minute.
func (m *monitor) probe(args []string, timeout time.Duration) HealthResult {
	r := HealthResult{Start: time.Now().UTC(), ExitCode: -1}
	out, err := os.CreateTemp(m.o.Bundle, ".probe-out-")
	if err != nil {
		r.End, r.Output = time.Now().UTC(), err.Error()
		return r
	}
	defer func() { out.Close(); os.Remove(out.Name()) }()
	code, timedOut, err := m.rt.exec(args, out, timeout, filepath.Join(m.o.Bundle, ".probe.pid"))
	r.End = time.Now().UTC()
	switch {
	case timedOut:
		r.Output = "Health check exceeded timeout (" + timeout.String() + ")"
	case err != nil:
		r.Output = err.Error()
	default:
		r.ExitCode = code
		if _, err := out.Seek(0, io.SeekStart); err == nil {
			b, _ := io.ReadAll(io.LimitReader(out, maxHealthOutput))
			r.Output = string(b)
		}
	}
	return r
}

// startErrorCode is the exit code Docker records for a container that
// could not start: 127 when the command was not found, 126 when it could
// not be invoked, 128 for anything else.
func startErrorCode(msg string) int {
	switch {
	case strings.Contains(msg, "executable file not found"), strings.Contains(msg, "no such file or directory"):
		return 127
	case strings.Contains(msg, "permission denied"):
		return 126
	}
	return 128
}
