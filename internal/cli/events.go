package cli

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/engine"
	"github.com/moby/moby/api/types/events"
	"github.com/spf13/cobra"
)

func newEvents(a *app) *cobra.Command {
	var since, until, format string
	var filters []string
	c := &cobra.Command{
		Use:   "events [OPTIONS]",
		Short: "Get real time events from the server",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := a.engine()
			if err != nil {
				return withCode(exitEngine, err)
			}
			now := time.Now()
			o := engine.EventsOptions{Follow: true}
			if o.Since, err = parseTimeArg(since, now); err != nil {
				return withCode(1, err)
			}
			if o.Until, err = parseTimeArg(until, now); err != nil {
				return withCode(1, err)
			}
			if o.Since.IsZero() {
				o.Since = now
			}
			if !o.Until.IsZero() && !o.Until.After(now) {
				o.Follow = false
			}
			f := parseFilters(filters)
			o.Filter = func(m events.Message) bool { return matchEvent(f, m) }
			return e.Events(cmd.Context(), o, func(m events.Message) error {
				if format == "json" || format == "{{json .}}" {
					b, _ := json.Marshal(m)
					_, err := fmt.Fprintln(a.stdout, string(b))
					return err
				}
				if format != "" {
					fm, err := newFormatter(a.stdout, format, "")
					if err != nil {
						return err
					}
					return fm.Row(m)
				}
				var attrs []string
				for k, v := range m.Actor.Attributes {
					attrs = append(attrs, k+"="+v)
				}
				sort.Strings(attrs)
				_, err := fmt.Fprintf(a.stdout, "%s %s %s %s (%s)\n", time.Unix(0, m.TimeNano).Format("2006-01-02T15:04:05.000000000-07:00"),
					m.Type, m.Action, m.Actor.ID, strings.Join(attrs, ", "))
				return err
			})
		},
	}
	c.Flags().StringVar(&since, "since", "", "show all events created since timestamp")
	c.Flags().StringVar(&until, "until", "", "stream events until this timestamp")
	c.Flags().StringArrayVarP(&filters, "filter", "f", nil, "filter output based on conditions provided")
	c.Flags().StringVar(&format, "format", "", "format output using a Go template or 'json'")
	return c
}

// matchEvent applies Docker's event filters: type, event (action),
// container (id or name), image, label.
func matchEvent(f map[string][]string, m events.Message) bool {
	one := func(key string, ok func(string) bool) bool {
		if len(f[key]) == 0 {
			return true
		}
		for _, v := range f[key] {
			if ok(v) {
				return true
			}
		}
		return false
	}
	return one("type", func(v string) bool { return string(m.Type) == v }) &&
		one("event", func(v string) bool { return string(m.Action) == v || strings.HasPrefix(string(m.Action), v+":") }) &&
		one("container", func(v string) bool {
			return m.Type == events.ContainerEventType && (strings.HasPrefix(m.Actor.ID, v) || m.Actor.Attributes["name"] == v)
		}) &&
		one("image", func(v string) bool { return m.Actor.Attributes["image"] == v }) &&
		one("label", func(v string) bool {
			k, val, has := strings.Cut(v, "=")
			got, ok := m.Actor.Attributes[k]
			return ok && (!has || got == val)
		})
}
