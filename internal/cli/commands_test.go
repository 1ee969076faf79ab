package cli

import (
	"slices"
	"testing"
)

// The table's names must be what the constructors set: a name missing
// there would send that command's invocations through the full tree
// (slower), one too many would build the wrong command.
func TestCommandNames(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range commands {
		cmd := c.build(&app{})
		want := append([]string{cmd.Name()}, cmd.Aliases...)
		if !slices.Equal(c.names, want) {
			t.Errorf("table names %q, constructor sets %q", c.names, want)
		}
		for _, n := range c.names {
			if seen[n] {
				t.Errorf("name %q twice in the table", n)
			}
			seen[n] = true
		}
	}
}

func TestFirstCommand(t *testing.T) {
	root := newRoot(&app{}, nil)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"plain", []string{"run", "--rm", "busybox"}, "run"},
		{"root flag with value", []string{"--root", "/r", "--state", "/s", "run", "x"}, "run"},
		{"root flag with =", []string{"--root=/r", "ps", "-a"}, "ps"},
		{"slice flag", []string{"--insecure-registry", "h:5000", "pull", "h:5000/a"}, "pull"},
		{"value looks like a command", []string{"--host", "run", "ps"}, "ps"},
		{"no command", []string{"--root", "/r"}, ""},
		{"help flag", []string{"-h"}, ""},
		{"unknown flag", []string{"--bogus", "run"}, ""},
		{"double dash", []string{"--", "run"}, ""},
		{"empty", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := firstCommand(root.PersistentFlags(), tc.args); got != tc.want {
				t.Errorf("firstCommand(%q) = %q, want %q", tc.args, got, tc.want)
			}
		})
	}
}

// A command line finds the same command (path and flags) in the tree
// built for it as in the full tree.
func TestLazyTreeFindsSameCommand(t *testing.T) {
	full := newRoot(&app{}, nil)
	for _, args := range [][]string{
		{"run", "--rm", "--network", "none", "busybox", "true"},
		{"--root", "/r", "container", "run", "-d", "busybox"},
		{"container", "ls", "-a"},
		{"image", "ls"},
		{"system", "prune", "-f"},
		{"system", "info"},
		{"volume", "create", "v"},
		{"network", "ls"},
		{"builder", "prune"},
		{"images"},
		{"version"},
	} {
		lazy := newRoot(&app{}, args)
		if n := len(lazy.Commands()); n != 1 {
			t.Errorf("%q: tree has %d top-level commands, want 1", args, n)
		}
		want, _, err := full.Traverse(args)
		if err != nil {
			t.Fatalf("%q: full tree: %v", args, err)
		}
		got, _, err := lazy.Traverse(args)
		if err != nil {
			t.Fatalf("%q: lazy tree: %v", args, err)
		}
		if got.CommandPath() != want.CommandPath() || got.LocalFlags().FlagUsages() != want.LocalFlags().FlagUsages() {
			t.Errorf("%q: lazy tree finds %q, full tree %q", args, got.CommandPath(), want.CommandPath())
		}
	}
}
