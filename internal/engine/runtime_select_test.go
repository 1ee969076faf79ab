package engine

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
)

// TestResolveRuntime: the names `--runtime` accepts, what a container
// records for each, and dockerd's words for everything else. $PATH is a
// directory of this test's own, so what runc and crun resolve to does not
// depend on the machine.
func TestResolveRuntime(t *testing.T) {
	bin := t.TempDir()
	runc := filepath.Join(bin, "runc")
	if err := os.WriteFile(runc, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	notExec := filepath.Join(bin, "crun") // on $PATH, but nobody may run it
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin)
	e := &Engine{opts: Options{Runtime: "/opt/berth/bin/berth-runtime"}}

	tests := []struct {
		name           string
		in             string
		recorded, path string
		errContains    string
	}{
		{name: "empty is the default", in: "", recorded: DefaultRuntimeName},
		{name: "default by name", in: "berth-runtime", recorded: DefaultRuntimeName},
		{name: "runc on PATH", in: "runc", recorded: "runc", path: runc},
		{name: "absolute path", in: runc, recorded: runc, path: runc},
		{name: "absolute path cleaned", in: bin + "/./runc", recorded: bin + "/./runc", path: runc},
		{name: "crun not executable", in: "crun", errContains: "unknown or invalid runtime name: crun"},
		{name: "unknown name", in: "kata", errContains: "unknown or invalid runtime name: kata"},
		{name: "relative path", in: "./runc", errContains: "unknown or invalid runtime name: ./runc"},
		{name: "missing absolute path", in: filepath.Join(bin, "nope"), errContains: "no such file"},
		{name: "directory", in: bin, errContains: "is not an executable file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			recorded, path, err := e.resolveRuntime(tc.in)
			if tc.errContains != "" {
				if err == nil {
					t.Fatalf("resolveRuntime(%q) = %q, %q; want an error", tc.in, recorded, path)
				}
				if !errdefs.IsInvalidArgument(err) {
					t.Errorf("error %v is not an invalid argument", err)
				}
				if !strings.Contains(err.Error(), tc.errContains) {
					t.Errorf("error %q does not say %q", err, tc.errContains)
				}
				return
			}
			if err != nil {
				t.Fatalf("resolveRuntime(%q): %v", tc.in, err)
			}
			if recorded != tc.recorded || path != tc.path {
				t.Errorf("resolveRuntime(%q) = %q, %q; want %q, %q", tc.in, recorded, path, tc.recorded, tc.path)
			}
		})
	}
}

// TestContainerRuntime: a recorded executable wins; the default and
// records of older builds (no executable) follow the engine's runtime.
func TestContainerRuntime(t *testing.T) {
	e := &Engine{opts: Options{Runtime: "/opt/berth/bin/berth-runtime"}}
	tests := []struct {
		name string
		c    *Container
		want string
	}{
		{name: "no container (build steps)", c: nil, want: e.opts.Runtime},
		{name: "older record", c: &Container{}, want: e.opts.Runtime},
		{name: "recorded runc", c: &Container{RuntimePath: "/usr/sbin/runc"}, want: "/usr/sbin/runc"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := e.containerRuntime(tc.c); got != tc.want {
				t.Errorf("containerRuntime = %q, want %q", got, tc.want)
			}
			cmd := e.ctrRuntimeCmd(t.Context(), tc.c, "state", "x")
			if cmd.Path != tc.want && !strings.HasSuffix(cmd.Path, tc.want) {
				t.Errorf("command runs %q, want %q", cmd.Path, tc.want)
			}
			if got := strings.Join(cmd.Args[1:], " "); got != "--root "+e.runtimeRoot()+" state x" {
				t.Errorf("command args %q", got)
			}
		})
	}
}

// TestRuntimes: /info's list is the default with the engine's executable
// and each other known name that resolves; a name whose binary cannot run
// is left out. $PATH is this test's own directory.
func TestRuntimes(t *testing.T) {
	bin := t.TempDir()
	runc := filepath.Join(bin, "runc")
	if err := os.WriteFile(runc, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "crun"), []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin)
	own := filepath.Join(t.TempDir(), "berth-runtime")
	if err := os.WriteFile(own, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	e := &Engine{opts: Options{Runtime: own}}
	got, def := e.Runtimes()
	if def != DefaultRuntimeName {
		t.Errorf("default runtime %q, want %q", def, DefaultRuntimeName)
	}
	want := map[string]string{DefaultRuntimeName: own, "runc": runc}
	if len(got) != len(want) {
		t.Fatalf("Runtimes() = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("Runtimes()[%q] = %q, want %q", k, got[k], v)
		}
	}
}
