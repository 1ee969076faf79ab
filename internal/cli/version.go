package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// apiVersion is the Docker Engine API version berth's model follows.
const apiVersion = "1.52"

func berthVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

func gitCommit() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 7 {
				return s.Value[:7]
			}
		}
	}
	return "unknown"
}

func newVersion(a *app) *cobra.Command {
	var format string
	c := &cobra.Command{
		Use:   "version",
		Short: "Show the berth version information",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			type comp struct {
				Version, APIVersion, GitCommit, GoVersion, Os, Arch string
			}
			v := comp{berthVersion(), apiVersion, gitCommit(), runtime.Version(), runtime.GOOS, runtime.GOARCH}
			if format != "" {
				fm, err := newFormatter(a.stdout, format, "")
				if err != nil {
					return withCode(1, err)
				}
				return fm.Row(map[string]any{"Client": v, "Server": v})
			}
			for _, section := range []string{"Client", "Server: berth (in-process engine)"} {
				fmt.Fprintln(a.stdout, section+":")
				fmt.Fprintf(a.stdout, " Version:           %s\n API version:       %s\n Go version:        %s\n Git commit:        %s\n OS/Arch:           %s/%s\n",
					v.Version, v.APIVersion, v.GoVersion, v.GitCommit, v.Os, v.Arch)
				if !strings.HasPrefix(section, "Server") {
					fmt.Fprintln(a.stdout)
				}
			}
			return nil
		},
	}
	c.Flags().StringVarP(&format, "format", "f", "", "format output using a Go template")
	return c
}
