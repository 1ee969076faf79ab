package cli

import (
	"fmt"
	"net"
	"sort"
	"strings"

	"github.com/berth-dev/berth/internal/engine"
	"github.com/berth-dev/berth/internal/enginetypes"
	nettypes "github.com/moby/moby/api/types/network"
	"github.com/spf13/cobra"
)

// newContainerCmd is `berth container …`, the management form of the
// container commands.
func newContainerCmd(a *app) *cobra.Command {
	c := &cobra.Command{Use: "container", Short: "Manage containers"}
	ls := newPs(a)
	ls.Use, ls.Aliases = "ls [OPTIONS]", []string{"list", "ps"}
	rm := newRm(a)
	rm.Aliases = []string{"remove"}
	c.AddCommand(ls, rm, newCreate(a), newRun(a), newStart(a), newStop(a), newKill(a), newRestart(a),
		newWait(a), newPause(a), newUnpause(a), newRename(a), newLogs(a), newExec(a), newAttach(a),
		newContainerInspect(a), newContainerPrune(a), newPort(a), newTop(a), newStats(a), newUpdate(a),
		newDiff(a), newCommit(a), newCp(a), newExport(a))
	return c
}

// eachContainer applies fn to every argument, printing errors like Docker
// and the argument on success; any failure makes the command exit 1.
func (a *app) eachContainer(args []string, fn func(ref string) error) error {
	var failed error
	for _, ref := range args {
		if err := fn(ref); err != nil {
			fmt.Fprintln(a.stderr, "Error response from daemon:", describe(err))
			failed = withCode(1, nil)
			continue
		}
		fmt.Fprintln(a.stdout, ref)
	}
	return failed
}

func newStart(a *app) *cobra.Command {
	var attach, interactive bool
	var detachKeys string
	c := &cobra.Command{
		Use:   "start [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Start one or more stopped containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := a.engine()
			if err != nil {
				return withCode(exitEngine, err)
			}
			if attach || interactive {
				if len(args) > 1 {
					return withCode(1, fmt.Errorf("you cannot start and attach multiple containers at once"))
				}
				info, err := e.ContainerInspect(cmd.Context(), args[0], false)
				if err != nil {
					return withCode(1, err)
				}
				keys, err := enginetypes.ParseDetachKeys(detachKeys)
				if err != nil {
					return withCode(1, err)
				}
				return a.runAttached(cmd.Context(), e, info.ID, info.Config.Tty, interactive && info.Config.OpenStdin, true, false, keys, true)
			}
			return a.eachContainer(args, func(ref string) error { return e.Start(cmd.Context(), ref) })
		},
	}
	c.Flags().BoolVarP(&attach, "attach", "a", false, "attach STDOUT/STDERR and forward signals")
	c.Flags().BoolVarP(&interactive, "interactive", "i", false, "attach container's STDIN")
	c.Flags().StringVar(&detachKeys, "detach-keys", "", "override the key sequence for detaching a container")
	return c
}

func stopFlags(c *cobra.Command, sig *string, timeout *int) {
	c.Flags().StringVarP(sig, "signal", "s", "", "signal to send to the container")
	c.Flags().IntVarP(timeout, "time", "t", 0, "seconds to wait before killing the container")
	c.Flags().IntVar(timeout, "timeout", 0, "seconds to wait before killing the container")
}

func stopOptions(cmd *cobra.Command, sig string, timeout int) engine.StopOptions {
	o := engine.StopOptions{Signal: sig}
	if cmd.Flags().Changed("time") || cmd.Flags().Changed("timeout") {
		o.Timeout = &timeout
	}
	return o
}

func newStop(a *app) *cobra.Command {
	var sig string
	var timeout int
	c := &cobra.Command{
		Use:   "stop [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Stop one or more running containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := a.engine()
			if err != nil {
				return withCode(exitEngine, err)
			}
			o := stopOptions(cmd, sig, timeout)
			return a.eachContainer(args, func(ref string) error { return e.Stop(cmd.Context(), ref, o) })
		},
	}
	stopFlags(c, &sig, &timeout)
	return c
}

func newRestart(a *app) *cobra.Command {
	var sig string
	var timeout int
	c := &cobra.Command{
		Use:   "restart [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Restart one or more containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := a.engine()
			if err != nil {
				return withCode(exitEngine, err)
			}
			o := stopOptions(cmd, sig, timeout)
			return a.eachContainer(args, func(ref string) error { return e.Restart(cmd.Context(), ref, o) })
		},
	}
	stopFlags(c, &sig, &timeout)
	return c
}

func newKill(a *app) *cobra.Command {
	var sig string
	c := &cobra.Command{
		Use:   "kill [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Kill one or more running containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := a.engine()
			if err != nil {
				return withCode(exitEngine, err)
			}
			return a.eachContainer(args, func(ref string) error { return e.Kill(cmd.Context(), ref, sig) })
		},
	}
	c.Flags().StringVarP(&sig, "signal", "s", "KILL", "signal to send to the container")
	return c
}

func newRm(a *app) *cobra.Command {
	var o engine.RemoveOptions
	var link bool
	c := &cobra.Command{
		Use:   "rm [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Remove one or more containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := a.engine()
			if err != nil {
				return withCode(exitEngine, err)
			}
			return a.eachContainer(args, func(ref string) error { return e.Remove(cmd.Context(), ref, o) })
		},
	}
	c.Flags().BoolVarP(&o.Force, "force", "f", false, "force the removal of a running container (uses SIGKILL)")
	c.Flags().BoolVarP(&o.Volumes, "volumes", "v", false, "remove anonymous volumes associated with the container")
	c.Flags().BoolVarP(&link, "link", "l", false, "remove the specified link (not supported)")
	return c
}

func newWait(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "wait CONTAINER [CONTAINER...]",
		Short: "Block until one or more containers stop, then print their exit codes",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := a.engine()
			if err != nil {
				return withCode(exitEngine, err)
			}
			var failed error
			for _, ref := range args {
				code, err := e.Wait(cmd.Context(), ref)
				if err != nil {
					fmt.Fprintln(a.stderr, "Error response from daemon:", describe(err))
					failed = withCode(1, nil)
					continue
				}
				fmt.Fprintln(a.stdout, code)
			}
			return failed
		},
	}
}

func newPause(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "pause CONTAINER [CONTAINER...]",
		Short: "Pause all processes within one or more containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := a.engine()
			if err != nil {
				return withCode(exitEngine, err)
			}
			return a.eachContainer(args, func(ref string) error { return e.Pause(cmd.Context(), ref) })
		},
	}
}

func newUnpause(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "unpause CONTAINER [CONTAINER...]",
		Short: "Unpause all processes within one or more containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := a.engine()
			if err != nil {
				return withCode(exitEngine, err)
			}
			return a.eachContainer(args, func(ref string) error { return e.Unpause(cmd.Context(), ref) })
		},
	}
}

func newRename(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "rename CONTAINER NEW_NAME",
		Short: "Rename a container",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := a.engine()
			if err != nil {
				return withCode(exitEngine, err)
			}
			if err := e.Rename(cmd.Context(), args[0], args[1]); err != nil {
				return withCode(1, fmt.Errorf("Error response from daemon: %s", describe(err)))
			}
			return nil
		},
	}
}

func newContainerPrune(a *app) *cobra.Command {
	var force bool
	var filters []string
	c := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove all stopped containers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := a.engine()
			if err != nil {
				return withCode(exitEngine, err)
			}
			if !force && !confirm(a, "WARNING! This will remove all stopped containers.") {
				return nil
			}
			rep, err := e.PruneContainers(cmd.Context(), parseFilters(filters))
			if err != nil {
				return withCode(1, err)
			}
			printDeleted(a.stdout, "Containers", rep.ContainersDeleted)
			fmt.Fprintln(a.stdout, "Total reclaimed space:", humanSize(int64(rep.SpaceReclaimed)))
			return nil
		},
	}
	c.Flags().BoolVarP(&force, "force", "f", false, "do not prompt for confirmation")
	c.Flags().StringArrayVar(&filters, "filter", nil, "provide filter values (e.g. \"until=<timestamp>\", \"label=key=value\", \"label!=key\")")
	return c
}

func newPort(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "port CONTAINER [PRIVATE_PORT[/PROTO]]",
		Short: "List port mappings or a specific mapping for the container",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := a.engine()
			if err != nil {
				return withCode(exitEngine, err)
			}
			info, err := e.ContainerInspect(cmd.Context(), args[0], false)
			if err != nil {
				return withCode(1, fmt.Errorf("Error response from daemon: %s", describe(err)))
			}
			// Docker's lines: "80/tcp -> 0.0.0.0:8080", or just the host
			// address when one port is asked for.
			var ports nettypes.PortMap
			if info.NetworkSettings != nil {
				ports = info.NetworkSettings.Ports
			}
			if len(args) == 2 {
				want := args[1]
				if !strings.Contains(want, "/") {
					want += "/tcp"
				}
				for p, binds := range ports {
					if p.String() != want || len(binds) == 0 {
						continue
					}
					for _, b := range binds {
						fmt.Fprintln(a.stdout, net.JoinHostPort(b.HostIP.String(), b.HostPort))
					}
					return nil
				}
				return withCode(1, fmt.Errorf("Error: No public port '%s' published for %s", want, info.Name[1:]))
			}
			keys := make([]string, 0, len(ports))
			byKey := map[string][]nettypes.PortBinding{}
			for p, binds := range ports {
				keys = append(keys, p.String())
				byKey[p.String()] = binds
			}
			sort.Strings(keys)
			for _, k := range keys {
				for _, b := range byKey[k] {
					fmt.Fprintf(a.stdout, "%s -> %s\n", k, net.JoinHostPort(b.HostIP.String(), b.HostPort))
				}
			}
			return nil
		},
	}
}
