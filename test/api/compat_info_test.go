//go:build linux

package api_test

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// TestInfoRuntimes: GET /info lists the runtimes berthd can run by name,
// each with the executable it resolves to (berth-runtime beside berthd,
// runc and crun where this machine has them), and the default; `docker
// info` and `berth --host info` print them as docker does.
func TestInfoRuntimes(t *testing.T) {
	d, docker := dockerAgainstBerthd(t)
	want := map[string]string{"berth-runtime": filepath.Join(binDir, "berth-runtime")}
	for _, name := range []string{"runc", "crun"} {
		if p, err := exec.LookPath(name); err == nil {
			if abs, err := filepath.Abs(p); err == nil {
				want[name] = abs
			}
		}
	}
	names := make([]string, 0, len(want))
	for n := range want {
		names = append(names, n)
	}
	sort.Strings(names)

	code, body := d.request(t, "GET", "/v1.44/info", "")
	if code != 200 {
		t.Fatalf("GET /info: %d %s", code, body)
	}
	var info struct {
		Runtimes       map[string]map[string]any
		DefaultRuntime string
	}
	if err := json.Unmarshal([]byte(body), &info); err != nil {
		t.Fatalf("decode /info: %v", err)
	}
	if info.DefaultRuntime != "berth-runtime" {
		t.Errorf("DefaultRuntime %q, want berth-runtime", info.DefaultRuntime)
	}
	if len(info.Runtimes) != len(want) {
		t.Errorf("Runtimes %v, want %v", info.Runtimes, want)
	}
	for name, path := range want {
		if got := info.Runtimes[name]["path"]; got != path {
			t.Errorf("Runtimes[%q].path = %v, want %s", name, got, path)
		}
	}

	// docker prints the names in map order; berth sorts them.
	runtimesLine := func(out string) []string {
		for _, l := range strings.Split(out, "\n") {
			if v, ok := strings.CutPrefix(l, " Runtimes: "); ok {
				f := strings.Fields(v)
				sort.Strings(f)
				return f
			}
		}
		return nil
	}
	lines := []string{" Runtimes: " + strings.Join(names, " "), " Default Runtime: berth-runtime"}
	out, errOut, code := docker("", "info")
	if code != 0 {
		t.Fatalf("docker info: exit %d: %s", code, errOut)
	}
	if got := runtimesLine(out); strings.Join(got, " ") != strings.Join(names, " ") {
		t.Errorf("docker info Runtimes %v, want %v:\n%s", got, names, out)
	}
	if !strings.Contains(out, lines[1]+"\n") {
		t.Errorf("docker info lacks %q:\n%s", lines[1], out)
	}
	if got := strings.TrimSpace(dockerMust(t, d, docker)("info", "--format", "{{.DefaultRuntime}} {{(index .Runtimes \"berth-runtime\").Path}}")); got != "berth-runtime "+want["berth-runtime"] {
		t.Errorf("docker info --format: %q", got)
	}
	out = d.ok("info")
	for _, l := range lines {
		if !strings.Contains(out, l+"\n") {
			t.Errorf("berth --host info lacks %q:\n%s", l, out)
		}
	}
	if got := strings.TrimSpace(d.ok("info", "--format", "{{.DefaultRuntime}} {{(index .Runtimes \"berth-runtime\").path}}")); got != "berth-runtime "+want["berth-runtime"] {
		t.Errorf("berth --host info --format: %q", got)
	}
}
