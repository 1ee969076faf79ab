package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// volumeCLI runs `berth volume ARGS` against a private root.
type volumeCLI struct {
	t    *testing.T
	root string
}

func (v volumeCLI) run(stdin string, args ...string) (stdout, stderr string, err error) {
	v.t.Helper()
	var out, errb bytes.Buffer
	a := &app{root: v.root, state: filepath.Join(v.root, "state"), stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb}
	defer func() {
		if a.eng != nil {
			a.eng.Close()
		}
	}()
	cmd := newVolume(a)
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err = cmd.Execute()
	return out.String(), errb.String(), err
}

func TestVolumeCommands(t *testing.T) {
	v := volumeCLI{t: t, root: t.TempDir()}
	mustRun := func(args ...string) string {
		t.Helper()
		out, errOut, err := v.run("", args...)
		if err != nil {
			t.Fatalf("volume %v: %v %s", args, err, errOut)
		}
		return out
	}
	if out := mustRun("create", "--label", "team=a", "data"); out != "data\n" {
		t.Fatalf("create: %q", out)
	}
	if out := mustRun("create", "--name", "other", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=1m"); out != "other\n" {
		t.Fatalf("create --name: %q", out)
	}
	anon := strings.TrimSpace(mustRun("create"))
	if len(anon) != 64 {
		t.Fatalf("generated name %q", anon)
	}
	ls := mustRun("ls")
	// ls sorts by name; the generated name may sort anywhere.
	names := []string{anon, "data", "other"}
	sort.Strings(names)
	want := "DRIVER    VOLUME NAME\n"
	for _, n := range names {
		want += "local     " + n + "\n"
	}
	if ls != want {
		t.Fatalf("ls:\n%s\nwant:\n%s", ls, want)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"ls", "-q", "--filter", "label=team=a"}, "data\n"},
		{[]string{"ls", "-q", "--filter", "name=oth"}, "other\n"},
		{[]string{"ls", "-q", "--filter", "dangling=false"}, ""},
		{[]string{"ls", "--format", "{{.Name}} {{.Driver}} {{.Label \"team\"}}", "--filter", "dangling=true", "--filter", "label=team"}, "data local a\n"},
		{[]string{"inspect", "--format", "{{.Name}} {{.Mountpoint}}", "data"}, "data " + filepath.Join(v.root, "volumes", "data", "_data") + "\n"},
	} {
		if out := mustRun(tc.args...); out != tc.want {
			t.Errorf("%v: %q, want %q", tc.args, out, tc.want)
		}
	}
	var docs []map[string]any
	if err := json.Unmarshal([]byte(mustRun("inspect", "data", "other")), &docs); err != nil || len(docs) != 2 {
		t.Fatalf("inspect json: %v %v", err, docs)
	}
	for _, k := range []string{"CreatedAt", "Driver", "Labels", "Mountpoint", "Name", "Options", "Scope"} {
		if _, ok := docs[0][k]; !ok {
			t.Errorf("inspect lacks %s: %v", k, docs[0])
		}
	}
	if _, ok := docs[0]["UsageData"]; ok {
		t.Error("inspect shows UsageData")
	}
	if docs[1]["Options"].(map[string]any)["device"] != "tmpfs" || docs[0]["Scope"] != "local" {
		t.Errorf("inspect: %v", docs)
	}
	if _, errOut, err := v.run("", "inspect", "nope"); err == nil || !strings.Contains(errOut, "no such volume") {
		t.Errorf("inspect missing: %v %q", err, errOut)
	}
	if _, errOut, err := v.run("", "rm", "nope"); err == nil || !strings.Contains(errOut, "no such volume") {
		t.Errorf("rm missing: %v %q", err, errOut)
	}
	if _, _, err := v.run("", "rm", "-f", "nope"); err != nil {
		t.Errorf("rm -f missing: %v", err)
	}
	// Prune: declined at the prompt, nothing goes; anonymous-only by
	// default (a `volume create` without a name is not anonymous); -a all.
	// The question goes to standard output, as docker's does.
	const ask = "WARNING! This will remove anonymous local volumes not used by at least one container.\nAre you sure you want to continue? [y/N] "
	if out, _, err := v.run("n\n", "prune"); err != nil || out != ask {
		t.Fatalf("declined prune: %q %v", out, err)
	}
	if out := mustRun("prune", "-f"); out != "Total reclaimed space: 0B\n" {
		t.Fatalf("prune: %q", out)
	}
	if err := os.WriteFile(filepath.Join(v.root, "volumes", "data", "_data", "f"), []byte("12345"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, err := v.run("y\n", "prune", "-a", "--filter", "label=team=a")
	if err != nil || out != strings.Replace(ask, "anonymous", "all", 1)+"Deleted Volumes:\ndata\n\nTotal reclaimed space: 5B\n" {
		t.Fatalf("prune -a: %q %v", out, err)
	}
	if out := mustRun("rm", "other", anon); out != "other\n"+anon+"\n" {
		t.Fatalf("rm: %q", out)
	}
	if out := mustRun("ls", "-q"); out != "" {
		t.Fatalf("left: %q", out)
	}
}
