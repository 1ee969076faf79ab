package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/engine"
	"github.com/moby/moby/api/types/container"
	"github.com/spf13/cobra"
)

func newTop(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "top CONTAINER [ps OPTIONS]",
		Short: "Display the running processes of a container",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := a.engine()
			if err != nil {
				return withCode(exitEngine, err)
			}
			top, err := e.Top(cmd.Context(), args[0], args[1:])
			if err != nil {
				return withCode(1, fmt.Errorf("Error response from daemon: %s", describe(err)))
			}
			tw := tabwriter.NewWriter(a.stdout, 20, 1, 3, ' ', 0)
			fmt.Fprintln(tw, strings.Join(top.Titles, "\t"))
			for _, p := range top.Processes {
				fmt.Fprintln(tw, strings.Join(p, "\t"))
			}
			return tw.Flush()
		},
	}
}

func newStats(a *app) *cobra.Command {
	var noStream, all, noTrunc bool
	var format string
	c := &cobra.Command{
		Use:   "stats [OPTIONS] [CONTAINER...]",
		Short: "Display a live stream of container(s) resource usage statistics",
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := a.engine()
			if err != nil {
				return withCode(exitEngine, err)
			}
			refs := args
			if len(refs) == 0 {
				list, err := e.List(cmd.Context(), engine.ListOptions{All: all})
				if err != nil {
					return withCode(1, err)
				}
				for _, s := range list {
					refs = append(refs, s.ID)
				}
			}
			prev := map[string]engine.Stats{}
			sample := func() ([]statsRow, error) {
				var rows []statsRow
				for _, ref := range refs {
					s, err := e.ContainerStats(cmd.Context(), ref)
					if err != nil {
						return nil, err
					}
					rows = append(rows, newStatsRow(s, prev[s.ID], noTrunc))
					prev[s.ID] = s
				}
				return rows, nil
			}
			// CPU % needs two samples, as Docker's first line does.
			if _, err := sample(); err != nil {
				return withCode(1, fmt.Errorf("Error response from daemon: %s", describe(err)))
			}
			for {
				select {
				case <-cmd.Context().Done():
					return nil
				case <-time.After(500 * time.Millisecond):
				}
				rows, err := sample()
				if err != nil {
					return withCode(1, fmt.Errorf("Error response from daemon: %s", describe(err)))
				}
				if !noStream && isTerminal(a.stdout) {
					fmt.Fprint(a.stdout, "\033[2J\033[H")
				}
				if err := printStats(a.stdout, rows, format); err != nil {
					return withCode(1, err)
				}
				if noStream {
					return nil
				}
			}
		},
	}
	c.Flags().BoolVar(&noStream, "no-stream", false, "disable streaming stats and only pull the first result")
	c.Flags().BoolVarP(&all, "all", "a", false, "show all containers (default shows just running)")
	c.Flags().BoolVar(&noTrunc, "no-trunc", false, "do not truncate output")
	c.Flags().StringVar(&format, "format", "", "format output using a Go template or 'json'")
	return c
}

// statsRow is what `stats --format` templates see.
type statsRow struct {
	Container, ID, Name, CPUPerc, MemUsage, MemPerc, NetIO, BlockIO, PIDs string
}

func newStatsRow(s, prev engine.Stats, noTrunc bool) statsRow {
	id := s.ID
	if !noTrunc {
		id = shortID(id)
	}
	cpu := 0.0
	if !prev.Read.IsZero() && s.CPUNanos >= prev.CPUNanos {
		if dt := s.Read.Sub(prev.Read); dt > 0 {
			cpu = float64(s.CPUNanos-prev.CPUNanos) / float64(dt.Nanoseconds()) * 100
		}
	}
	used := s.MemUsage - min(s.MemCache, s.MemUsage)
	memPerc := 0.0
	if s.MemLimit > 0 {
		memPerc = float64(used) / float64(s.MemLimit) * 100
	}
	return statsRow{
		Container: id, ID: id, Name: s.Name,
		CPUPerc:  fmt.Sprintf("%.2f%%", cpu),
		MemUsage: binSize(used) + " / " + binSize(s.MemLimit),
		MemPerc:  fmt.Sprintf("%.2f%%", memPerc),
		NetIO:    "0B / 0B",
		BlockIO:  humanSize(int64(s.BlkRead)) + " / " + humanSize(int64(s.BlkWrite)),
		PIDs:     fmt.Sprint(s.Pids),
	}
}

// binSize is Docker's BytesSize (KiB, MiB, GiB).
func binSize(n uint64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	f := float64(n)
	i := 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	return fmt.Sprintf("%.4g%s", f, units[i])
}

func printStats(out io.Writer, rows []statsRow, format string) error {
	fm, err := newFormatter(out, format, "{{.Container}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}")
	if err != nil {
		return err
	}
	for _, r := range rows {
		if err := fm.Row(r); err != nil {
			return err
		}
	}
	return fm.Flush()
}

func newUpdate(a *app) *cobra.Command {
	var memory, memSwap, memRes, cpus, restart string
	var cpuShares, cpuQuota, cpuPeriod, pids int64
	var cpusetCpus, cpusetMems string
	var blkio uint16
	c := &cobra.Command{
		Use:   "update [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Update configuration of one or more containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := a.engine()
			if err != nil {
				return withCode(exitEngine, err)
			}
			var r container.Resources
			for _, x := range []struct {
				s   string
				dst *int64
			}{{memory, &r.Memory}, {memSwap, &r.MemorySwap}, {memRes, &r.MemoryReservation}} {
				if x.s == "" {
					continue
				}
				if x.s == "-1" {
					*x.dst = -1
					continue
				}
				n, err := parseBytes(x.s)
				if err != nil {
					return withCode(1, err)
				}
				*x.dst = n
			}
			if cpus != "" {
				var f float64
				if _, err := fmt.Sscanf(cpus, "%g", &f); err != nil {
					return withCode(1, fmt.Errorf("invalid --cpus %q", cpus))
				}
				r.NanoCPUs = int64(f * 1e9)
			}
			r.CPUShares, r.CPUQuota, r.CPUPeriod = cpuShares, cpuQuota, cpuPeriod
			r.CpusetCpus, r.CpusetMems, r.BlkioWeight = cpusetCpus, cpusetMems, blkio
			if cmd.Flags().Changed("pids-limit") {
				r.PidsLimit = &pids
			}
			var rp *container.RestartPolicy
			if restart != "" {
				name, n, _ := strings.Cut(restart, ":")
				p := container.RestartPolicy{Name: container.RestartPolicyMode(name)}
				if n != "" {
					fmt.Sscanf(n, "%d", &p.MaximumRetryCount)
				}
				rp = &p
			}
			return a.eachContainer(args, func(ref string) error { return e.Update(cmd.Context(), ref, r, rp) })
		},
	}
	fl := c.Flags()
	fl.StringVarP(&memory, "memory", "m", "", "memory limit")
	fl.StringVar(&memSwap, "memory-swap", "", "swap limit equal to memory plus swap: -1 to enable unlimited swap")
	fl.StringVar(&memRes, "memory-reservation", "", "memory soft limit")
	fl.StringVar(&cpus, "cpus", "", "number of CPUs")
	fl.Int64VarP(&cpuShares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	fl.Int64Var(&cpuQuota, "cpu-quota", 0, "limit CPU CFS quota")
	fl.Int64Var(&cpuPeriod, "cpu-period", 0, "limit CPU CFS period")
	fl.StringVar(&cpusetCpus, "cpuset-cpus", "", "CPUs in which to allow execution (0-3, 0,1)")
	fl.StringVar(&cpusetMems, "cpuset-mems", "", "MEMs in which to allow execution (0-3, 0,1)")
	fl.Int64Var(&pids, "pids-limit", 0, "tune container pids limit (set -1 for unlimited)")
	fl.Uint16Var(&blkio, "blkio-weight", 0, "block IO (relative weight), between 10 and 1000")
	fl.StringVar(&restart, "restart", "", "restart policy to apply when a container exits")
	return c
}

// parseBytes reads "512m", "1g", "100k", "1024".
func parseBytes(s string) (int64, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range []struct {
		suf string
		m   int64
	}{{"kb", 1 << 10}, {"mb", 1 << 20}, {"gb", 1 << 30}, {"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"b", 1}} {
		if strings.HasSuffix(s, u.suf) {
			s, mult = strings.TrimSuffix(s, u.suf), u.m
			break
		}
	}
	var f float64
	if _, err := fmt.Sscanf(s, "%g", &f); err != nil || f < 0 {
		return 0, fmt.Errorf("invalid size: %q", s)
	}
	return int64(f * float64(mult)), nil
}

func newDiff(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "diff CONTAINER",
		Short: "Inspect changes to files or directories on a container's filesystem",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := a.engine()
			if err != nil {
				return withCode(exitEngine, err)
			}
			changes, err := e.Diff(cmd.Context(), args[0])
			if err != nil {
				return withCode(1, fmt.Errorf("Error response from daemon: %s", describe(err)))
			}
			for _, ch := range changes {
				fmt.Fprintf(a.stdout, "%s %s\n", ch.Kind, ch.Path)
			}
			return nil
		},
	}
}

func newCommit(a *app) *cobra.Command {
	var o engine.CommitOptions
	c := &cobra.Command{
		Use:   "commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
		Short: "Create a new image from a container's changes",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := a.engine()
			if err != nil {
				return withCode(exitEngine, err)
			}
			if len(args) == 2 {
				o.Reference = args[1]
			}
			id, err := e.Commit(cmd.Context(), args[0], o)
			if err != nil {
				return withCode(1, fmt.Errorf("Error response from daemon: %s", describe(err)))
			}
			fmt.Fprintln(a.stdout, id)
			return nil
		},
	}
	c.Flags().StringVarP(&o.Comment, "message", "m", "", "commit message")
	c.Flags().StringVarP(&o.Author, "author", "a", "", "author (e.g., \"John Hannibal Smith <hannibal@a-team.com>\")")
	c.Flags().BoolVarP(&o.Pause, "pause", "p", true, "pause container during commit")
	c.Flags().StringArrayVarP(&o.Changes, "change", "c", nil, "apply Dockerfile instruction to the created image")
	return c
}

func newCp(a *app) *cobra.Command {
	var archiveMode, follow, quiet bool
	c := &cobra.Command{
		Use:   "cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n  berth cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
		Short: "Copy files/folders between a container and the local filesystem",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := a.engine()
			if err != nil {
				return withCode(exitEngine, err)
			}
			srcCtr, srcPath, srcIn := splitCpArg(args[0])
			dstCtr, dstPath, dstIn := splitCpArg(args[1])
			var cpErr error
			switch {
			case srcIn && dstIn:
				return withCode(1, fmt.Errorf("copying between containers is not supported"))
			case srcIn:
				cpErr = a.copyFromContainer(cmd.Context(), e, srcCtr, srcPath, dstPath)
			case dstIn:
				cpErr = a.copyToContainer(cmd.Context(), e, srcPath, dstCtr, dstPath)
			default:
				return withCode(1, fmt.Errorf("must specify at least one container source"))
			}
			if cpErr != nil {
				return withCode(1, fmt.Errorf("Error response from daemon: %s", describe(cpErr)))
			}
			return nil
		},
	}
	c.Flags().BoolVarP(&archiveMode, "archive", "a", false, "archive mode (copy all uid/gid information)")
	c.Flags().BoolVarP(&follow, "follow-link", "L", false, "always follow symbol link in SRC_PATH")
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "suppress progress output during copy")
	return c
}

// splitCpArg splits "CONTAINER:PATH"; a local path holds no colon before
// its first slash.
func splitCpArg(s string) (ctr, p string, inContainer bool) {
	if strings.HasPrefix(s, "/") || strings.HasPrefix(s, ".") {
		return "", s, false
	}
	ctr, p, ok := strings.Cut(s, ":")
	if !ok {
		return "", s, false
	}
	return ctr, p, true
}

// copyFromContainer: to "-" the tar itself; else extracted at dst (into
// an existing directory, or as dst itself).
func (a *app) copyFromContainer(ctx context.Context, e Backend, ctr, src, dst string) error {
	if dst == "-" {
		return e.CopyFrom(ctx, ctr, src, a.stdout)
	}
	st, err := e.StatPath(ctx, ctr, src)
	if err != nil {
		return err
	}
	destDir, rename := dst, ""
	if fi, err := os.Stat(dst); err != nil || !fi.IsDir() {
		destDir, rename = path.Dir(dst), path.Base(dst)
	}
	if err := os.MkdirAll(destDir, 0o755); err != nil {
		return err
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(e.CopyFrom(ctx, ctr, src, pw)) }()
	var r io.Reader = pr
	if rename != "" && rename != st.Name {
		r = renameTar(pr, st.Name, rename)
	}
	_, err = archive.Apply(ctx, destDir, r, archive.ApplyOptions{Whiteouts: archive.WhiteoutsApply})
	return err
}

// copyToContainer: from "-" a tar on stdin; else a tar of src, extracted
// into dst (an existing directory) or as dst.
func (a *app) copyToContainer(ctx context.Context, e Backend, src, ctr, dst string) error {
	if src == "-" {
		return e.CopyTo(ctx, ctr, dst, a.stdin)
	}
	fi, err := os.Lstat(src)
	if err != nil {
		return err
	}
	destDir, name := dst, path.Base(path.Clean(src))
	if st, err := e.StatPath(ctx, ctr, dst); err != nil || !st.Mode.IsDir() {
		destDir, name = path.Dir(dst), path.Base(dst)
	}
	pr, pw := io.Pipe()
	go func() {
		if fi.IsDir() {
			pw.CloseWithError(archive.Tar(ctx, pw, src, archive.TarOptions{Prefix: name}))
			return
		}
		pw.CloseWithError(tarFile(pw, src, name, fi))
	}()
	return e.CopyTo(ctx, ctr, destDir, pr)
}
