package cli

import (
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// command is a top-level command: the names cobra matches it by (Name,
// then Aliases, as its constructor sets them) and its constructor.
type command struct {
	names []string
	build func(*app) *cobra.Command
}

// commands are berth's top-level commands in help order. TestCommandNames
// keeps the names in step with what the constructors set.
var commands = []command{
	{[]string{"pull"}, newPull}, {[]string{"push"}, newPush},
	{[]string{"login"}, newLogin}, {[]string{"logout"}, newLogout},
	{[]string{"images", "image ls", "image list"}, newImages}, {[]string{"image"}, newImageCmd},
	{[]string{"history"}, newHistory}, {[]string{"tag"}, newTag}, {[]string{"rmi"}, newRmi},
	{[]string{"save"}, newSave}, {[]string{"load"}, newLoad}, {[]string{"import"}, newImport},
	{[]string{"export"}, newExport},
	{[]string{"create"}, newCreate}, {[]string{"run"}, newRun}, {[]string{"rm"}, newRm},
	{[]string{"system"}, newSystemAll}, {[]string{"volume"}, newVolume}, {[]string{"network"}, newNetwork},
	{[]string{"build"}, newBuild}, {[]string{"builder"}, newBuilderCmd},
	{[]string{"container"}, newContainerCmd}, {[]string{"ps"}, newPs},
	{[]string{"start"}, newStart}, {[]string{"stop"}, newStop}, {[]string{"kill"}, newKill},
	{[]string{"restart"}, newRestart}, {[]string{"wait"}, newWait},
	{[]string{"pause"}, newPause}, {[]string{"unpause"}, newUnpause}, {[]string{"rename"}, newRename},
	{[]string{"logs"}, newLogs}, {[]string{"exec"}, newExec}, {[]string{"attach"}, newAttach},
	{[]string{"inspect"}, newInspect}, {[]string{"port"}, newPort}, {[]string{"top"}, newTop},
	{[]string{"stats"}, newStats}, {[]string{"update"}, newUpdate}, {[]string{"diff"}, newDiff},
	{[]string{"commit"}, newCommit}, {[]string{"cp"}, newCp},
	{[]string{"events"}, newEvents}, {[]string{"version"}, newVersion}, {[]string{"info"}, newInfo},
}

// newSystemAll is `system`: defined with the image commands, joined here
// by the container-side subcommands.
func newSystemAll(a *app) *cobra.Command {
	c := newSystem(a)
	c.AddCommand(newInfo(a), newSystemPrune(a), newEvents(a))
	return c
}

// addCommands adds to root the command args invoke, or all of them when
// args name none unambiguously (no command, help, completion, a typo that
// wants suggestions, a flag we do not know). Building the whole tree is
// most of the CLI's start-up: `create` and `run` (twice each, with
// `container`) register over a hundred flags, so a `berth run` that
// built everything would spend a millisecond on commands it never uses.
// A command runs the same either way: cobra looks only at the path it
// takes, and every other path builds the full tree.
func addCommands(root *cobra.Command, a *app, args []string) {
	if name := firstCommand(root.PersistentFlags(), args); name != "" {
		for _, c := range commands {
			for _, n := range c.names {
				if n == name {
					root.AddCommand(c.build(a))
					return
				}
			}
		}
	}
	for _, c := range commands {
		root.AddCommand(c.build(a))
	}
}

// firstCommand returns the first argument that is not a root flag or a
// root flag's value, or "" when it cannot tell (an unknown flag, "--").
func firstCommand(fs *pflag.FlagSet, args []string) string {
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "--" || arg == "-" {
			return ""
		}
		if !strings.HasPrefix(arg, "-") {
			return arg
		}
		var f *pflag.Flag
		name, _, hasValue := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		switch {
		case strings.HasPrefix(arg, "--"):
			f = fs.Lookup(name)
		case len(name) == 1:
			f = fs.ShorthandLookup(name)
		}
		if f == nil {
			return "" // -h, --help, a typo: cobra decides with the full tree
		}
		if !hasValue && f.NoOptDefVal == "" {
			i++ // --root DIR
		}
	}
	return ""
}
