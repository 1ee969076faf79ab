package cli

import (
	"bufio"
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"text/template"

	"github.com/berth-dev/berth/internal/engine"
	"github.com/docker/go-units"
	volumetypes "github.com/moby/moby/api/types/volume"
	"github.com/spf13/cobra"
)

// newVolume is `berth volume`: create, ls, inspect, rm, prune.
func newVolume(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "volume COMMAND",
		Short: "Manage volumes",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	c.AddCommand(newVolumeCreate(a), newVolumeLs(a), newVolumeInspect(a), newVolumeRm(a), newVolumePrune(a))
	return c
}

func newVolumeCreate(a *app) *cobra.Command {
	var name, driver string
	var labels, opts []string
	c := &cobra.Command{
		Use:   "create [OPTIONS] [VOLUME]",
		Short: "Create a volume",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				if name != "" && name != args[0] {
					return fmt.Errorf("conflicting options: either specify --name or provide positional arg, not both")
				}
				name = args[0]
			}
			e, err := a.engine()
			if err != nil {
				return err
			}
			req := engine.VolumeCreateOptions{Name: name, Driver: driver, Labels: keyValues(labels), DriverOpts: keyValues(opts)}
			v, err := e.VolumeCreate(cmd.Context(), req)
			if err != nil {
				return err
			}
			fmt.Fprintln(a.stdout, v.Name)
			return nil
		},
	}
	fl := c.Flags()
	fl.StringVar(&name, "name", "", "specify volume name")
	fl.StringVarP(&driver, "driver", "d", "local", "specify volume driver name")
	fl.StringArrayVarP(&labels, "label", "l", nil, "set metadata for a volume")
	fl.StringArrayVarP(&opts, "opt", "o", nil, "set driver specific options (type, device, o)")
	return c
}

// keyValues turns ["k=v", "k2"] into a map (a bare key maps to "").
func keyValues(list []string) map[string]string {
	if len(list) == 0 {
		return nil
	}
	m := make(map[string]string, len(list))
	for _, kv := range list {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

// volumeRow is what `volume ls --format` templates see (Docker's fields).
type volumeRow struct {
	Name, Driver, Scope, Mountpoint, Labels, Size string
	Links                                         string
	labels                                        map[string]string
}

// Label returns one label's value, as Docker's {{.Label "k"}}.
func (r volumeRow) Label(k string) string { return r.labels[k] }

// volumeFilter is `volume ls --filter`.
type volumeFilter struct {
	dangling          *bool
	names, drivers    []string
	labels, notLabels []string
}

func parseVolumeFilters(list []string) (*volumeFilter, error) {
	f := &volumeFilter{}
	for _, kv := range list {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("bad format of filter (expected name=value)")
		}
		switch k {
		case "dangling":
			var b bool
			switch strings.ToLower(v) {
			case "true", "1":
				b = true
			case "false", "0":
			default:
				return nil, fmt.Errorf("invalid filter 'dangling=%s'", v)
			}
			f.dangling = &b
		case "name":
			f.names = append(f.names, v)
		case "driver":
			f.drivers = append(f.drivers, v)
		case "label":
			f.labels = append(f.labels, v)
		case "label!":
			f.notLabels = append(f.notLabels, v)
		default:
			if strings.HasSuffix(k, "!") || k == "label!" {
				return nil, fmt.Errorf("invalid filter '%s'", k)
			}
			return nil, fmt.Errorf("invalid filter '%s'", k)
		}
	}
	return f, nil
}

func (f *volumeFilter) match(v volumetypes.Volume) bool {
	refs := int64(0)
	if v.UsageData != nil {
		refs = v.UsageData.RefCount
	}
	if f.dangling != nil && (refs == 0) != *f.dangling {
		return false
	}
	if len(f.names) > 0 {
		ok := false
		for _, n := range f.names {
			// Docker matches names as substrings.
			ok = ok || strings.Contains(v.Name, n)
		}
		if !ok {
			return false
		}
	}
	if len(f.drivers) > 0 {
		ok := false
		for _, d := range f.drivers {
			ok = ok || d == v.Driver
		}
		if !ok {
			return false
		}
	}
	return engine.MatchLabels(v.Labels, f.labels, f.notLabels)
}

func newVolumeLs(a *app) *cobra.Command {
	var quiet bool
	var format string
	var filters []string
	c := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List volumes",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := parseVolumeFilters(filters)
			if err != nil {
				return err
			}
			e, err := a.engine()
			if err != nil {
				return err
			}
			vols, err := e.VolumeList(cmd.Context())
			if err != nil {
				return err
			}
			var rows []volumeRow
			for _, v := range vols {
				if !f.match(v) {
					continue
				}
				var ls []string
				for k, val := range v.Labels {
					ls = append(ls, k+"="+val)
				}
				refs := int64(0)
				if v.UsageData != nil {
					refs = v.UsageData.RefCount
				}
				rows = append(rows, volumeRow{Name: v.Name, Driver: v.Driver, Scope: v.Scope, Mountpoint: v.Mountpoint,
					Labels: strings.Join(ls, ","), Size: "N/A", Links: fmt.Sprint(refs), labels: v.Labels})
			}
			if quiet {
				for _, r := range rows {
					fmt.Fprintln(a.stdout, r.Name)
				}
				return nil
			}
			if format == "" || format == "table" {
				// Docker's heading is "VOLUME NAME", not the field's name.
				tw := tabwriter.NewWriter(a.stdout, 10, 1, 3, ' ', 0)
				fmt.Fprintln(tw, "DRIVER\tVOLUME NAME")
				for _, r := range rows {
					fmt.Fprintf(tw, "%s\t%s\n", r.Driver, r.Name)
				}
				return tw.Flush()
			}
			fm, err := newFormatter(a.stdout, format, "")
			if err != nil {
				return err
			}
			for _, r := range rows {
				if err := fm.Row(r); err != nil {
					return err
				}
			}
			return fm.Flush()
		},
	}
	fl := c.Flags()
	fl.BoolVarP(&quiet, "quiet", "q", false, "only display volume names")
	fl.StringVar(&format, "format", "", "format output: table, table TEMPLATE, json, or a Go template")
	fl.StringArrayVarP(&filters, "filter", "f", nil, "provide filter values (e.g. 'dangling=true', 'label=k=v', 'name=', 'driver=')")
	return c
}

func newVolumeInspect(a *app) *cobra.Command {
	var format string
	c := &cobra.Command{
		Use:   "inspect [OPTIONS] VOLUME [VOLUME...]",
		Short: "Display detailed information on one or more volumes",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := a.engine()
			if err != nil {
				return err
			}
			var docs []volumetypes.Volume
			var failed error
			for _, name := range args {
				v, err := e.VolumeInspect(cmd.Context(), name)
				if err != nil {
					fmt.Fprintln(a.stderr, "Error response from daemon:", describe(err))
					failed = withCode(1, nil)
					continue
				}
				v.UsageData = nil // inspect shows no usage, as in Docker
				docs = append(docs, v)
			}
			if format != "" && format != "json" {
				t, err := template.New("format").Funcs(templateFuncs).Parse(format)
				if err != nil {
					return fmt.Errorf("template parsing error: %v", err)
				}
				for _, d := range docs {
					w := bufio.NewWriter(a.stdout)
					if err := t.Execute(w, d); err != nil {
						return fmt.Errorf("template: %v", err)
					}
					fmt.Fprintln(w)
					w.Flush()
				}
				return failed
			}
			if docs == nil {
				docs = []volumetypes.Volume{}
			}
			b, err := json.MarshalIndent(docs, "", "    ")
			if err != nil {
				return err
			}
			fmt.Fprintln(a.stdout, string(b))
			return failed
		},
	}
	c.Flags().StringVarP(&format, "format", "f", "", "format output using a Go template or json")
	return c
}

func newVolumeRm(a *app) *cobra.Command {
	var force bool
	c := &cobra.Command{
		Use:     "rm [OPTIONS] VOLUME [VOLUME...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more volumes",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := a.engine()
			if err != nil {
				return err
			}
			var failed error
			for _, name := range args {
				if err := e.VolumeRemove(cmd.Context(), name, force); err != nil {
					fmt.Fprintln(a.stderr, "Error response from daemon:", describe(err))
					failed = withCode(1, nil)
					continue
				}
				fmt.Fprintln(a.stdout, name)
			}
			return failed
		},
	}
	c.Flags().BoolVarP(&force, "force", "f", false, "do not fail on volumes that do not exist (volumes in use are never removed)")
	return c
}

func newVolumePrune(a *app) *cobra.Command {
	var all, force bool
	var filters []string
	c := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused local volumes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var labels, notLabels []string
			for _, kv := range filters {
				k, v, ok := strings.Cut(kv, "=")
				switch {
				case ok && k == "label":
					labels = append(labels, v)
				case ok && k == "label!":
					notLabels = append(notLabels, v)
				case ok && k == "all":
					all = v == "true" || v == "1"
				default:
					return fmt.Errorf("invalid filter '%s'", kv)
				}
			}
			if !force {
				warning := "WARNING! This will remove anonymous local volumes not used by at least one container."
				if all {
					warning = "WARNING! This will remove all local volumes not used by at least one container."
				}
				if !confirm(a, warning) {
					return nil
				}
			}
			e, err := a.engine()
			if err != nil {
				return err
			}
			deleted, reclaimed, err := e.VolumePrune(cmd.Context(), all, labels, notLabels)
			printDeleted(a.stdout, "Volumes", deleted)
			fmt.Fprintf(a.stdout, "Total reclaimed space: %s\n", units.HumanSize(float64(reclaimed)))
			return err
		},
	}
	fl := c.Flags()
	fl.BoolVarP(&all, "all", "a", false, "remove all unused volumes, not just anonymous ones")
	fl.BoolVarP(&force, "force", "f", false, "do not prompt for confirmation")
	fl.StringArrayVar(&filters, "filter", nil, "provide filter values (e.g. 'label=<label>')")
	return c
}
