package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"text/template"
	"time"

	"github.com/berth-dev/berth/internal/engine"
	"github.com/moby/moby/api/types/container"
	"github.com/spf13/cobra"
)

// psRow is what `ps --format` templates see (Docker's container context).
type psRow struct {
	s       container.Summary
	noTrunc bool
}

func (r psRow) ID() string {
	if r.noTrunc {
		return r.s.ID
	}
	return shortID(r.s.ID)
}
func (r psRow) Image() string {
	if strings.HasPrefix(r.s.Image, "sha256:") && !r.noTrunc {
		return shortID(r.s.Image)
	}
	return familiar(r.s.Image)
}
func (r psRow) Command() string {
	c := r.s.Command
	if !r.noTrunc {
		c = ellipsis(c, 20)
	}
	return strconv.Quote(c)
}
func (r psRow) CreatedAt() string {
	return time.Unix(r.s.Created, 0).Format("2006-01-02 15:04:05 -0700 MST")
}
func (r psRow) RunningFor() string { return ago(time.Unix(r.s.Created, 0)) }
func (r psRow) Ports() string      { return "" }
func (r psRow) State() string      { return string(r.s.State) }
func (r psRow) Status() string     { return r.s.Status }
func (r psRow) Size() string       { return humanSize(r.s.SizeRw) }
func (r psRow) Names() string {
	var n []string
	for _, x := range r.s.Names {
		n = append(n, strings.TrimPrefix(x, "/"))
	}
	return strings.Join(n, ",")
}
func (r psRow) Labels() string {
	var kv []string
	for k, v := range r.s.Labels {
		kv = append(kv, k+"="+v)
	}
	sort.Strings(kv)
	return strings.Join(kv, ",")
}
func (r psRow) Label(name string) string { return r.s.Labels[name] }
func (r psRow) Mounts() string {
	var m []string
	for _, x := range r.s.Mounts {
		if x.Name != "" {
			m = append(m, x.Name)
		} else {
			m = append(m, x.Source)
		}
	}
	return strings.Join(m, ",")
}
func (r psRow) Networks() string { return r.s.HostConfig.NetworkMode }

// ellipsis truncates to n runes, ending in "…" as Docker does.
func ellipsis(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

var psHeaders = map[string]string{
	"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
	"RunningFor": "CREATED", "Ports": "PORTS", "State": "STATE", "Status": "STATUS", "Size": "SIZE",
	"Names": "NAMES", "Labels": "LABELS", "Mounts": "MOUNTS", "Networks": "NETWORKS",
}

const psDefaultTable = "{{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"

func newPs(a *app) *cobra.Command {
	var all, quiet, size, latest, noTrunc bool
	var last int
	var format string
	var filters []string
	c := &cobra.Command{
		Use:   "ps [OPTIONS]",
		Short: "List containers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := a.engine()
			if err != nil {
				return withCode(exitEngine, err)
			}
			o := engine.ListOptions{All: all, Size: size, Limit: last, Filters: parseFilters(filters)}
			if latest {
				o.Limit = 1
			}
			list, err := e.List(cmd.Context(), o)
			if err != nil {
				return withCode(1, err)
			}
			if quiet && format == "" {
				format = "{{.ID}}"
			}
			return printPs(a.stdout, list, format, size, noTrunc)
		},
	}
	fl := c.Flags()
	fl.BoolVarP(&all, "all", "a", false, "show all containers (default shows just running)")
	fl.BoolVarP(&quiet, "quiet", "q", false, "only display container IDs")
	fl.BoolVarP(&size, "size", "s", false, "display total file sizes")
	fl.BoolVarP(&latest, "latest", "l", false, "show the latest created container (includes all states)")
	fl.IntVarP(&last, "last", "n", 0, "show n last created containers (includes all states)")
	fl.BoolVar(&noTrunc, "no-trunc", false, "don't truncate output")
	fl.StringVar(&format, "format", "", "format output using a Go template, 'table' or 'json'")
	fl.StringArrayVarP(&filters, "filter", "f", nil, "filter output based on conditions provided")
	return c
}

func printPs(out io.Writer, list []container.Summary, format string, size, noTrunc bool) error {
	table := false
	switch {
	case format == "" || format == "table":
		format, table = psDefaultTable, true
		if size {
			format += "\t{{.Size}}"
		}
	case format == "json":
		for _, s := range list {
			b, err := json.Marshal(s)
			if err != nil {
				return err
			}
			fmt.Fprintln(out, string(b))
		}
		return nil
	case strings.HasPrefix(format, "table "):
		format, table = strings.TrimPrefix(format, "table "), true
	}
	format = strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(format)
	tmpl, err := template.New("ps").Funcs(templateFuncs).Parse(format)
	if err != nil {
		return fmt.Errorf("template parsing error: %v", err)
	}
	w := out
	var tw *tabwriter.Writer
	if table {
		tw = tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)
		w = tw
		fmt.Fprintln(tw, fieldRef.ReplaceAllStringFunc(format, func(m string) string {
			name := fieldRef.FindStringSubmatch(m)[1]
			if h, ok := psHeaders[name]; ok {
				return h
			}
			return strings.ToUpper(name)
		}))
	}
	for _, s := range list {
		var buf bytes.Buffer
		if err := tmpl.Execute(&buf, psRow{s: s, noTrunc: noTrunc}); err != nil {
			return fmt.Errorf("template: %v", err)
		}
		fmt.Fprintln(w, buf.String())
	}
	if tw != nil {
		return tw.Flush()
	}
	return nil
}

// parseFilters turns repeated key=value flags into Docker's filter map.
func parseFilters(list []string) map[string][]string {
	if len(list) == 0 {
		return nil
	}
	m := map[string][]string{}
	for _, f := range list {
		k, v, _ := strings.Cut(f, "=")
		m[strings.ToLower(strings.TrimSpace(k))] = append(m[strings.ToLower(strings.TrimSpace(k))], v)
	}
	return m
}
