package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strings"
	"text/tabwriter"
	"text/template"
	"time"

	"github.com/docker/go-units"
)

// templateFuncs are the functions Docker's --format templates offer.
var templateFuncs = template.FuncMap{
	"json": func(v any) string {
		b, _ := json.Marshal(v)
		return string(b)
	},
	"split":    strings.Split,
	"join":     strings.Join,
	"title":    func(s string) string { return strings.ToUpper(s[:min(1, len(s))]) + s[min(1, len(s)):] },
	"lower":    strings.ToLower,
	"upper":    strings.ToUpper,
	"pad":      func(s string, l, r int) string { return strings.Repeat(" ", l) + s + strings.Repeat(" ", r) },
	"truncate": func(s string, n int) string { return s[:min(n, len(s))] },
	"println":  func(a ...any) string { return fmt.Sprintln(a...) },
}

// headers maps a template field to the column title Docker prints.
var headers = map[string]string{
	"ID": "IMAGE ID", "Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST",
	"CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE", "SharedSize": "SHARED SIZE",
	"UniqueSize": "UNIQUE SIZE", "Containers": "CONTAINERS", "VirtualSize": "SIZE",
	"CreatedBy": "CREATED BY", "Comment": "COMMENT", "Names": "NAMES", "Image": "IMAGE",
	"Command": "COMMAND", "Status": "STATUS", "Ports": "PORTS", "Type": "TYPE", "TotalCount": "TOTAL",
	"Active": "ACTIVE", "Reclaimable": "RECLAIMABLE", "Labels": "LABELS", "Mounts": "MOUNTS",
}

var fieldRef = regexp.MustCompile(`\{\{\s*\.(\w+)\s*\}\}`)

// formatter writes rows with Docker's --format rules: "" or "table" gives
// the default table, "table TEMPLATE" a table of the template's fields,
// "json" one JSON object per line, anything else the template per row.
type formatter struct {
	out    io.Writer
	tmpl   *template.Template
	table  bool
	json   bool
	header string
	tw     *tabwriter.Writer
}

func newFormatter(out io.Writer, format, defaultTable string) (*formatter, error) {
	f := &formatter{out: out}
	switch {
	case format == "" || format == "table":
		format, f.table = defaultTable, true
	case format == "json":
		f.json = true
		return f, nil
	case strings.HasPrefix(format, "table "):
		format, f.table = strings.TrimPrefix(format, "table "), true
	}
	format = strings.ReplaceAll(format, `\t`, "\t")
	format = strings.ReplaceAll(format, `\n`, "\n")
	t, err := template.New("format").Funcs(templateFuncs).Parse(format)
	if err != nil {
		return nil, fmt.Errorf("template parsing error: %v", err)
	}
	f.tmpl = t
	if f.table {
		f.tw = tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)
		f.header = fieldRef.ReplaceAllStringFunc(format, func(m string) string {
			name := fieldRef.FindStringSubmatch(m)[1]
			if h, ok := headers[name]; ok {
				return h
			}
			return strings.ToUpper(name)
		})
		fmt.Fprintln(f.tw, f.header)
	}
	return f, nil
}

// Row writes one item; raw is what `json` prints (usually the same value).
func (f *formatter) Row(v any) error {
	if f.json {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(f.out, string(b))
		return err
	}
	var buf bytes.Buffer
	if err := f.tmpl.Execute(&buf, v); err != nil {
		return fmt.Errorf("template: %v", err)
	}
	w := f.out
	if f.tw != nil {
		w = f.tw
	}
	_, err := fmt.Fprintln(w, buf.String())
	return err
}

// Flush ends the table.
func (f *formatter) Flush() error {
	if f.tw != nil {
		return f.tw.Flush()
	}
	return nil
}

// ago is "N units ago" for a past time.
func ago(t time.Time) string {
	if t.IsZero() {
		return "N/A"
	}
	return units.HumanDuration(time.Since(t)) + " ago"
}
