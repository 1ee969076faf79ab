package cli

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/linux/signum"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/spf13/pflag"
)

// lifecycleOptions applies the settings the engine and monitor act on:
// --init, --stop-signal, --stop-timeout, --restart, --log-* and --health-*.
func (f *createFlags) lifecycleOptions(fl *pflag.FlagSet, cfg *container.Config, hc *container.HostConfig) error {
	var err error
	if fl.Changed("init") {
		v := f.init
		hc.Init = &v
	}
	if f.stopSignal != "" {
		if _, ok := signum.Parse(f.stopSignal); !ok {
			return fmt.Errorf("invalid signal: %s", f.stopSignal)
		}
		cfg.StopSignal = f.stopSignal
	}
	if fl.Changed("stop-timeout") {
		v := f.stopTimeout
		cfg.StopTimeout = &v
	}
	if hc.RestartPolicy, err = parseRestart(f.restart); err != nil {
		return err
	}
	if hc.LogConfig, err = parseLogConfig(f.logDriver, f.logOpts); err != nil {
		return err
	}
	if cfg.Healthcheck, err = f.healthcheck(fl); err != nil {
		return err
	}
	return nil
}

// parseRestart reads --restart no|always|unless-stopped|on-failure[:N].
func parseRestart(s string) (container.RestartPolicy, error) {
	name, count, hasCount := strings.Cut(s, ":")
	p := container.RestartPolicy{Name: container.RestartPolicyMode(name)}
	if hasCount {
		n, err := strconv.Atoi(count)
		if err != nil {
			return p, fmt.Errorf("invalid restart policy format: maximum retry count must be an integer")
		}
		p.MaximumRetryCount = n
	}
	if name == "" {
		p.Name = container.RestartPolicyDisabled
	}
	if err := container.ValidateRestartPolicy(p); err != nil {
		return p, err
	}
	return p, nil
}

// jsonFileOpts are the options the json-file log driver takes.
var jsonFileOpts = map[string]bool{"max-size": true, "max-file": true, "compress": true, "labels": true,
	"labels-regex": true, "env": true, "env-regex": true, "tag": true}

// parseLogConfig reads --log-driver and --log-opt (json-file and none only).
func parseLogConfig(driver string, opts []string) (container.LogConfig, error) {
	lc := container.LogConfig{Type: driver}
	if lc.Type == "" {
		lc.Type = "json-file"
	}
	if lc.Type != "json-file" && lc.Type != "none" {
		return lc, fmt.Errorf("logging driver %q is not supported: use json-file or none", lc.Type)
	}
	for _, o := range opts {
		k, v, ok := strings.Cut(o, "=")
		if !ok {
			return lc, fmt.Errorf("invalid key value pair format in log-opt: %s", o)
		}
		if lc.Type != "json-file" || !jsonFileOpts[k] {
			return lc, fmt.Errorf("unknown log opt '%s' for %s log driver", k, lc.Type)
		}
		switch k {
		case "max-size":
			if n, err := units.RAMInBytes(v); err != nil || n <= 0 {
				return lc, fmt.Errorf("invalid max-size %q: must be a positive size such as 10m", v)
			}
		case "max-file":
			if n, err := strconv.Atoi(v); err != nil || n < 1 {
				return lc, fmt.Errorf("invalid max-file %q: must be a positive integer", v)
			}
		}
		if lc.Config == nil {
			lc.Config = map[string]string{}
		}
		lc.Config[k] = v
	}
	if lc.Config["max-file"] != "" && lc.Config["max-file"] != "1" && lc.Config["max-size"] == "" {
		return lc, fmt.Errorf("max-file can only be set when max-size is set")
	}
	return lc, nil
}

// healthcheck builds Config.Healthcheck from the --health-* flags, as
// Docker's CLI: --health-cmd runs through the shell (CMD-SHELL), and
// --no-healthcheck disables the image's check ({"NONE"}).
func (f *createFlags) healthcheck(fl *pflag.FlagSet) (*container.HealthConfig, error) {
	changed := false
	for _, n := range []string{"health-cmd", "health-interval", "health-timeout", "health-start-period", "health-start-interval", "health-retries"} {
		changed = changed || fl.Changed(n)
	}
	if f.noHealthcheck {
		if changed {
			return nil, fmt.Errorf("--no-healthcheck conflicts with --health-* options")
		}
		return &container.HealthConfig{Test: []string{"NONE"}}, nil
	}
	if !changed {
		return nil, nil
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"interval", f.healthInterval}, {"timeout", f.healthTimeout}, {"start-period", f.healthStart}, {"start-interval", f.healthStartInterv}} {
		if d.v < 0 {
			return nil, fmt.Errorf("--health-%s cannot be negative", d.name)
		}
		if d.v != 0 && d.v < time.Millisecond {
			return nil, fmt.Errorf("--health-%s must be at least 1ms", d.name)
		}
	}
	if f.healthRetries < 0 {
		return nil, fmt.Errorf("--health-retries cannot be negative")
	}
	hc := &container.HealthConfig{
		Interval: f.healthInterval, Timeout: f.healthTimeout, StartPeriod: f.healthStart,
		StartInterval: f.healthStartInterv, Retries: f.healthRetries,
	}
	if f.healthCmd != "" {
		hc.Test = []string{"CMD-SHELL", f.healthCmd}
	}
	return hc, nil
}
