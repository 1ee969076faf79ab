package monitor

import (
	"os"
	"strings"
	"time"
)

// HealthConfig is the subset of the Docker API's container.HealthConfig the
// monitor reads from --health; the JSON field names are the API's, so the
// engine writes the API type as is (durations in nanoseconds). Decoding into
// our own struct keeps the moby API module out of the monitor binary.
type HealthConfig struct {
	Test          []string      `json:",omitempty"`
	Interval      time.Duration `json:",omitempty"`
	Timeout       time.Duration `json:",omitempty"`
	StartPeriod   time.Duration `json:",omitempty"`
	StartInterval time.Duration `json:",omitempty"`
	Retries       int           `json:",omitempty"`
}

// Docker's health check defaults and limits (daemon/health.go).
const (
	defaultProbeInterval = 30 * time.Second
	defaultProbeTimeout  = 30 * time.Second
	defaultStartInterval = 5 * time.Second
	defaultProbeRetries  = 3
	maxHealthLog         = 5
	maxHealthOutput      = 4096
)

// Health statuses.
const (
	HealthStarting  = "starting"
	HealthHealthy   = "healthy"
	HealthUnhealthy = "unhealthy"
)

// readHealthConfig loads --health. It returns nil when the test is empty or
// NONE: the container has no health check.
func readHealthConfig(path string) (*HealthConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, wrap("health config", err)
	}
	fields, err := parseJSONObject(data)
	if err != nil {
		return nil, invalid("health config " + path + ": " + err.Error())
	}
	hc := &HealthConfig{
		Test:          fields["Test"].list,
		Interval:      time.Duration(fields["Interval"].num),
		Timeout:       time.Duration(fields["Timeout"].num),
		StartPeriod:   time.Duration(fields["StartPeriod"].num),
		StartInterval: time.Duration(fields["StartInterval"].num),
		Retries:       int(fields["Retries"].num),
	}
	if len(hc.Test) == 0 || hc.Test[0] == "NONE" {
		return nil, nil
	}
	if _, err := hc.probeArgs(); err != nil {
		return nil, err
	}
	return hc, nil
}

// probeArgs is the command a probe runs in the container.
func (hc *HealthConfig) probeArgs() ([]string, error) {
	switch hc.Test[0] {
	case "CMD":
		if len(hc.Test) > 1 {
			return hc.Test[1:], nil
		}
	case "CMD-SHELL":
		if len(hc.Test) == 2 {
			return []string{"/bin/sh", "-c", hc.Test[1]}, nil
		}
	}
	return nil, invalid("health check test " + quote(strings.Join(hc.Test, " ")) + `: want ["CMD", args...], ["CMD-SHELL", command] or ["NONE"]`)
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

func (hc *HealthConfig) interval() time.Duration { return orDefault(hc.Interval, defaultProbeInterval) }
func (hc *HealthConfig) timeout() time.Duration  { return orDefault(hc.Timeout, defaultProbeTimeout) }
func (hc *HealthConfig) retries() int {
	if hc.Retries <= 0 {
		return defaultProbeRetries
	}
	return hc.Retries
}

// nextProbe is the delay before the next probe: StartInterval while the
// container is still starting within its start period, Interval otherwise.
func (hc *HealthConfig) nextProbe(h *Health, startedAt, now time.Time) time.Duration {
	if h.Status == HealthStarting && now.Sub(startedAt) < hc.StartPeriod {
		return orDefault(hc.StartInterval, defaultStartInterval)
	}
	return hc.interval()
}

// record applies one probe result as Docker's handleProbeResult does: a
// success resets the streak and makes the container healthy; a failure
// counts (unless the container never succeeded and is still within its
// start period) and makes it unhealthy at Retries failures in a row.
func (hc *HealthConfig) record(h *Health, r HealthResult, startedAt time.Time) {
	if len(r.Output) > maxHealthOutput {
		r.Output = r.Output[:maxHealthOutput]
	}
	h.Log = append(h.Log, r)
	if len(h.Log) > maxHealthLog {
		h.Log = append(h.Log[:0:0], h.Log[len(h.Log)-maxHealthLog:]...)
	}
	if r.ExitCode == 0 {
		h.FailingStreak = 0
		h.Status = HealthHealthy
		return
	}
	if h.Status == HealthStarting && r.Start.Sub(startedAt) < hc.StartPeriod {
		return
	}
	h.FailingStreak++
	if h.FailingStreak >= hc.retries() {
		h.Status = HealthUnhealthy
	}
}
