package cli

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/engine"
	"github.com/spf13/cobra"
)

func newLogs(a *app) *cobra.Command {
	var follow, timestamps, details bool
	var tail, since, until string
	c := &cobra.Command{
		Use:   "logs [OPTIONS] CONTAINER",
		Short: "Fetch the logs of a container",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := a.engine()
			if err != nil {
				return withCode(exitEngine, err)
			}
			o := engine.LogsOptions{Follow: follow, Timestamps: timestamps, Tail: -1}
			if tail != "" && tail != "all" {
				n, err := strconv.Atoi(tail)
				if err != nil {
					return withCode(1, fmt.Errorf("invalid value for --tail: %q", tail))
				}
				o.Tail = n
			}
			now := time.Now()
			if o.Since, err = parseTimeArg(since, now); err != nil {
				return withCode(1, err)
			}
			if o.Until, err = parseTimeArg(until, now); err != nil {
				return withCode(1, err)
			}
			if err := e.Logs(cmd.Context(), args[0], o, a.stdout, a.stderr); err != nil {
				return withCode(1, fmt.Errorf("Error response from daemon: %s", describe(err)))
			}
			return nil
		},
	}
	fl := c.Flags()
	fl.BoolVarP(&follow, "follow", "f", false, "follow log output")
	fl.BoolVarP(&timestamps, "timestamps", "t", false, "show timestamps")
	fl.BoolVar(&details, "details", false, "show extra details provided to logs")
	fl.StringVarP(&tail, "tail", "n", "all", "number of lines to show from the end of the logs")
	fl.StringVar(&since, "since", "", "show logs since timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)")
	fl.StringVar(&until, "until", "", "show logs before a timestamp or relative")
	return c
}

// parseTimeArg reads Docker's --since/--until: a duration before now
// ("10m"), a Unix timestamp ("1700000000[.123]") or an RFC 3339 time.
func parseTimeArg(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && !strings.ContainsAny(s, "-:") {
		sec := int64(f)
		return time.Unix(sec, int64((f-float64(sec))*1e9)), nil
	}
	for _, layout := range []string{time.RFC3339Nano, time.RFC3339, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("invalid time %q: want a duration (10m), a Unix timestamp or RFC 3339", s)
}
