package cli

import (
	"bufio"
	"os"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/engine"
	"github.com/moby/moby/api/types/container"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// createFlags are the flags `create` and `run` share.
type createFlags struct {
	name, workdir, user, hostname, entrypoint, pull, platform string
	runtime                                                   string // OCI runtime; the engine resolves it
	env, envFile, labels                                      []string
	tty, interactive, readOnly                                bool

	// Security.
	capAdd, capDrop, securityOpt, devices, groupAdd []string
	privileged                                      bool
	userns                                          string
	// Resources.
	ulimits, sysctls                                     []string
	memory, memorySwap, memoryReservation, cpus, shmSize string
	cpusetCPUs, cpusetMems                               string
	cpuShares, pidsLimit                                 int64
	oomScoreAdj                                          int
	// Mounts.
	volumes, mounts, tmpfs []string
	// Lifecycle settings the engine and monitor act on.
	init                                                          bool
	stopSignal, restart, logDriver                                string
	stopTimeout                                                   int
	logOpts                                                       []string
	healthCmd                                                     string
	healthInterval, healthTimeout, healthStart, healthStartInterv time.Duration
	healthRetries                                                 int
	noHealthcheck                                                 bool
	// Networking (network.go).
	net netFlags
}

func (f *createFlags) register(fl *pflag.FlagSet) {
	// -h is --hostname here, as in Docker; help is --help only.
	fl.Bool("help", false, "print usage")
	fl.StringVar(&f.name, "name", "", "assign a name to the container")
	fl.StringVarP(&f.workdir, "workdir", "w", "", "working directory inside the container")
	fl.StringVarP(&f.user, "user", "u", "", "username or UID (format: <name|uid>[:<group|gid>])")
	fl.StringVarP(&f.hostname, "hostname", "h", "", "container host name")
	fl.StringVar(&f.entrypoint, "entrypoint", "", "overwrite the default ENTRYPOINT of the image")
	fl.StringVar(&f.pull, "pull", "missing", `pull image before running ("always", "missing", "never")`)
	fl.StringVar(&f.platform, "platform", "", "set platform if server is multi-platform capable")
	fl.StringVar(&f.runtime, "runtime", "", `runtime to use for this container ("berth-runtime", "runc", "crun" or an absolute path)`)
	fl.StringArrayVarP(&f.env, "env", "e", nil, "set environment variables")
	fl.StringArrayVar(&f.envFile, "env-file", nil, "read in a file of environment variables")
	fl.StringArrayVarP(&f.labels, "label", "l", nil, "set meta data on a container")
	fl.BoolVarP(&f.tty, "tty", "t", false, "allocate a pseudo-TTY")
	fl.BoolVarP(&f.interactive, "interactive", "i", false, "keep STDIN open even if not attached")
	fl.BoolVar(&f.readOnly, "read-only", false, "mount the container's root filesystem as read only")

	fl.StringArrayVar(&f.capAdd, "cap-add", nil, "add Linux capabilities")
	fl.StringArrayVar(&f.capDrop, "cap-drop", nil, "drop Linux capabilities")
	fl.BoolVar(&f.privileged, "privileged", false, "give extended privileges to this container")
	fl.StringArrayVar(&f.securityOpt, "security-opt", nil, "security options")
	fl.StringArrayVar(&f.devices, "device", nil, "add a host device to the container")
	fl.StringArrayVar(&f.groupAdd, "group-add", nil, "add additional groups to join")
	fl.StringVar(&f.userns, "userns", "", `user namespace to use ("host", "auto[:size=N]", or UID:GID:SIZE)`)

	fl.StringArrayVar(&f.ulimits, "ulimit", nil, "ulimit options")
	fl.StringArrayVar(&f.sysctls, "sysctl", nil, "sysctl options")
	fl.StringVarP(&f.memory, "memory", "m", "", "memory limit")
	fl.StringVar(&f.memorySwap, "memory-swap", "", "swap limit equal to memory plus swap: '-1' to enable unlimited swap")
	fl.StringVar(&f.memoryReservation, "memory-reservation", "", "memory soft limit")
	fl.StringVar(&f.cpus, "cpus", "", "number of CPUs")
	fl.Int64VarP(&f.cpuShares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	fl.StringVar(&f.cpusetCPUs, "cpuset-cpus", "", "CPUs in which to allow execution (0-3, 0,1)")
	fl.StringVar(&f.cpusetMems, "cpuset-mems", "", "MEMs in which to allow execution (0-3, 0,1)")
	fl.Int64Var(&f.pidsLimit, "pids-limit", 0, "tune container pids limit (set -1 for unlimited)")
	fl.IntVar(&f.oomScoreAdj, "oom-score-adj", 0, "tune host's OOM preferences (-1000 to 1000)")
	fl.StringVar(&f.shmSize, "shm-size", "", "size of /dev/shm")

	fl.StringArrayVarP(&f.volumes, "volume", "v", nil, "bind mount a volume")
	fl.StringArrayVar(&f.mounts, "mount", nil, "attach a filesystem mount to the container")
	fl.StringArrayVar(&f.tmpfs, "tmpfs", nil, "mount a tmpfs directory")

	fl.BoolVar(&f.init, "init", false, "run an init inside the container that forwards signals and reaps processes")
	fl.StringVar(&f.stopSignal, "stop-signal", "", "signal to stop the container")
	fl.IntVar(&f.stopTimeout, "stop-timeout", 0, "timeout (in seconds) to stop a container")
	fl.StringVar(&f.restart, "restart", "no", "restart policy to apply when a container exits")
	fl.StringVar(&f.logDriver, "log-driver", "", "logging driver for the container")
	fl.StringArrayVar(&f.logOpts, "log-opt", nil, "log driver options")
	fl.StringVar(&f.healthCmd, "health-cmd", "", "command to run to check health")
	fl.DurationVar(&f.healthInterval, "health-interval", 0, "time between running the check (ms|s|m|h)")
	fl.DurationVar(&f.healthTimeout, "health-timeout", 0, "maximum time to allow one check to run (ms|s|m|h)")
	fl.DurationVar(&f.healthStart, "health-start-period", 0, "start period for the container to initialize before starting health-retries countdown (ms|s|m|h)")
	fl.DurationVar(&f.healthStartInterv, "health-start-interval", 0, "time between running the check during the start period (ms|s|m|h)")
	fl.IntVar(&f.healthRetries, "health-retries", 0, "consecutive failures needed to report unhealthy")
	fl.BoolVar(&f.noHealthcheck, "no-healthcheck", false, "disable any container-specified HEALTHCHECK")
	registerNetworkFlags(fl, &f.net)
}

// options turns flags and positional args (IMAGE [COMMAND] [ARG...]) into a create request.
func (f *createFlags) options(cmd *cobra.Command, args []string) (engine.CreateOptions, error) {
	o := engine.CreateOptions{Name: f.name}
	cfg := &o.Config
	cfg.Image = args[0]
	if len(args) > 1 {
		cfg.Cmd = args[1:]
	}
	if cmd.Flags().Changed("entrypoint") {
		cfg.Entrypoint = []string{f.entrypoint}
	}
	cfg.WorkingDir, cfg.User, cfg.Hostname = f.workdir, f.user, f.hostname
	cfg.Tty, cfg.OpenStdin, cfg.AttachStdin = f.tty, f.interactive, f.interactive
	cfg.AttachStdout, cfg.AttachStderr = true, true
	for _, file := range f.envFile {
		vars, err := readEnvFile(file)
		if err != nil {
			return o, err
		}
		cfg.Env = append(cfg.Env, vars...)
	}
	for _, kv := range f.env {
		cfg.Env = append(cfg.Env, expandEnv(kv)...)
	}
	cfg.Labels = map[string]string{}
	for _, l := range f.labels {
		k, v, _ := strings.Cut(l, "=")
		cfg.Labels[k] = v
	}
	o.HostConfig = container.HostConfig{ReadonlyRootfs: f.readOnly, Runtime: f.runtime}
	if err := f.hostOptions(cmd.Flags(), &o.Config, &o.HostConfig); err != nil {
		return o, err
	}
	if err := f.net.apply(&o); err != nil {
		return o, err
	}
	return o, nil
}

// expandEnv handles `-e NAME` (take the value from our environment; unset
// means skip, as in Docker).
func expandEnv(kv string) []string {
	if strings.Contains(kv, "=") {
		return []string{kv}
	}
	if v, ok := os.LookupEnv(kv); ok {
		return []string{kv + "=" + v}
	}
	return nil
}

func readEnvFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, expandEnv(line)...)
	}
	return out, sc.Err()
}

// hostOptions turns the security, resource, mount and lifecycle flags into
// Docker's Config and HostConfig fields, validating what Docker's CLI
// validates before it sends a request (the engine checks the rest). Each
// group lives in its own file: createflags_{security,resources,mounts,lifecycle}.go.
func (f *createFlags) hostOptions(fl *pflag.FlagSet, cfg *container.Config, hc *container.HostConfig) error {
	if err := f.securityOptions(hc); err != nil {
		return err
	}
	if err := f.resourceOptions(fl, hc); err != nil {
		return err
	}
	if err := f.mountOptions(hc); err != nil {
		return err
	}
	return f.lifecycleOptions(fl, cfg, hc)
}
