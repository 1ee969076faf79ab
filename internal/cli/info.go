package cli

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strings"

	"github.com/berth-dev/berth/internal/engine"
	"github.com/spf13/cobra"
)

func newInfo(a *app) *cobra.Command {
	var format string
	c := &cobra.Command{
		Use:   "info [OPTIONS]",
		Short: "Display system-wide information",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := a.engine()
			if err != nil {
				return withCode(exitEngine, err)
			}
			list, err := e.List(cmd.Context(), engine.ListOptions{All: true})
			if err != nil {
				return withCode(1, err)
			}
			imgs, err := e.Images(cmd.Context())
			if err != nil {
				return withCode(1, err)
			}
			runtimes, defRuntime := e.Runtimes()
			names := make([]string, 0, len(runtimes))
			for n := range runtimes {
				names = append(names, n)
			}
			sort.Strings(names)
			info := map[string]any{
				"Containers": len(list), "ContainersRunning": 0, "ContainersPaused": 0, "ContainersStopped": 0,
				"Images": len(imgs), "Driver": e.Driver(), "DockerRootDir": e.Root(), "StateDir": e.State(),
				"OperatingSystem": osName(), "OSType": runtime.GOOS, "Architecture": runtime.GOARCH,
				"NCPU": runtime.NumCPU(), "ServerVersion": berthVersion(), "LoggingDriver": "json-file",
				"CgroupVersion": cgroupVersion(), "DefaultRuntime": defRuntime, "Runtimes": runtimePaths(runtimes),
			}
			for _, s := range list {
				switch s.State {
				case "running":
					info["ContainersRunning"] = info["ContainersRunning"].(int) + 1
				case "paused":
					info["ContainersPaused"] = info["ContainersPaused"].(int) + 1
				default:
					info["ContainersStopped"] = info["ContainersStopped"].(int) + 1
				}
			}
			if host, err := os.Hostname(); err == nil {
				info["Name"] = host
			}
			if format != "" {
				fm, err := newFormatter(a.stdout, format, "")
				if err != nil {
					return withCode(1, err)
				}
				return fm.Row(info)
			}
			p := func(k string, v any) { fmt.Fprintf(a.stdout, " %s: %v\n", k, v) }
			fmt.Fprintln(a.stdout, "Server:")
			p("Containers", info["Containers"])
			fmt.Fprintf(a.stdout, "  Running: %v\n  Paused: %v\n  Stopped: %v\n", info["ContainersRunning"], info["ContainersPaused"], info["ContainersStopped"])
			p("Images", info["Images"])
			p("Server Version", info["ServerVersion"])
			p("Storage Driver", info["Driver"])
			p("Logging Driver", "json-file")
			p("Cgroup Version", info["CgroupVersion"])
			// docker info's two lines: the names, space-separated, then
			// the default.
			p("Runtimes", strings.Join(names, " "))
			p("Default Runtime", defRuntime)
			p("Operating System", info["OperatingSystem"])
			p("OSType", runtime.GOOS)
			p("Architecture", runtime.GOARCH)
			p("CPUs", runtime.NumCPU())
			p("Name", info["Name"])
			p("Berth Root Dir", e.Root())
			p("Berth State Dir", e.State())
			return nil
		},
	}
	c.Flags().StringVarP(&format, "format", "f", "", "format output using a Go template")
	return c
}

// runtimePaths is Runtimes as /info has it, so --format templates written
// for docker ({{.Runtimes.runc.path}}) work on both.
func runtimePaths(rs map[string]string) map[string]map[string]string {
	out := make(map[string]map[string]string, len(rs))
	for name, path := range rs {
		out[name] = map[string]string{"path": path}
	}
	return out
}

func osName() string {
	b, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return runtime.GOOS
	}
	for _, l := range splitLines(string(b)) {
		if len(l) > 12 && l[:12] == "PRETTY_NAME=" {
			return trimQuotes(l[12:])
		}
	}
	return runtime.GOOS
}

func splitLines(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

func trimQuotes(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return s[1 : len(s)-1]
	}
	return s
}

func cgroupVersion() string {
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		return "2"
	}
	return "1"
}
