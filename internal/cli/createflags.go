package cli

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/engine"
	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"
)

// createFlags are the flags `create` and `run` share.
type createFlags struct {
	name, workdir, user, hostname, entrypoint, pull, platform string
	runtime                                                   string // OCI runtime; the engine resolves it
	env, envFile, labels                                      []string
	tty, interactive, readOnly                                bool
	entrypointSet                                             bool

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
// validates before it sends a request (the engine checks the rest).
func (f *createFlags) hostOptions(fl *pflag.FlagSet, cfg *container.Config, hc *container.HostConfig) error {
	hc.CapAdd, hc.CapDrop, hc.Privileged, hc.GroupAdd = f.capAdd, f.capDrop, f.privileged, f.groupAdd
	sec, err := inlineSeccomp(f.securityOpt)
	if err != nil {
		return err
	}
	hc.SecurityOpt = sec
	if err := validateUserns(f.userns); err != nil {
		return err
	}
	hc.UsernsMode = container.UsernsMode(f.userns)
	for _, d := range f.devices {
		m, err := parseDevice(d)
		if err != nil {
			return err
		}
		hc.Devices = append(hc.Devices, m)
	}
	for _, u := range f.ulimits {
		l, err := units.ParseUlimit(u)
		if err != nil {
			return fmt.Errorf("invalid argument %q for \"--ulimit\" flag: %w", u, err)
		}
		hc.Ulimits = append(hc.Ulimits, l)
	}
	for _, s := range f.sysctls {
		k, v, ok := strings.Cut(s, "=")
		if !ok || k == "" {
			return fmt.Errorf("invalid argument %q for \"--sysctl\" flag: sysctl '%s' is not allowed", s, s)
		}
		if hc.Sysctls == nil {
			hc.Sysctls = map[string]string{}
		}
		hc.Sysctls[k] = v
	}
	r := &hc.Resources
	for _, sz := range []struct {
		flag, val string
		dst       *int64
	}{
		{"memory", f.memory, &r.Memory},
		{"memory-reservation", f.memoryReservation, &r.MemoryReservation},
		{"shm-size", f.shmSize, &hc.ShmSize},
	} {
		if sz.val == "" {
			continue
		}
		n, err := units.RAMInBytes(sz.val)
		if err != nil {
			return fmt.Errorf("invalid argument %q for \"--%s\" flag: %w", sz.val, sz.flag, err)
		}
		*sz.dst = n
	}
	switch f.memorySwap {
	case "":
	case "-1":
		r.MemorySwap = -1
	default:
		n, err := units.RAMInBytes(f.memorySwap)
		if err != nil {
			return fmt.Errorf("invalid argument %q for \"--memory-swap\" flag: %w", f.memorySwap, err)
		}
		r.MemorySwap = n
	}
	if f.cpus != "" {
		n, err := parseCPUs(f.cpus)
		if err != nil {
			return err
		}
		r.NanoCPUs = n
	}
	r.CPUShares, r.CpusetCpus, r.CpusetMems = f.cpuShares, f.cpusetCPUs, f.cpusetMems
	if fl.Changed("pids-limit") {
		n := f.pidsLimit
		r.PidsLimit = &n
	}
	hc.OomScoreAdj = f.oomScoreAdj

	hc.Binds = f.volumes
	for _, m := range f.mounts {
		mm, err := parseMount(m)
		if err != nil {
			return fmt.Errorf("invalid argument %q for \"--mount\" flag: %w", m, err)
		}
		hc.Mounts = append(hc.Mounts, mm)
	}
	for _, t := range f.tmpfs {
		dst, opts, _ := strings.Cut(t, ":")
		if hc.Tmpfs == nil {
			hc.Tmpfs = map[string]string{}
		}
		hc.Tmpfs[dst] = opts
	}

	if fl.Changed("init") {
		v := f.init
		hc.Init = &v
	}
	if f.stopSignal != "" {
		if _, err := parseSignal(f.stopSignal); err != nil {
			return err
		}
		cfg.StopSignal = f.stopSignal
	}
	if fl.Changed("stop-timeout") {
		v := f.stopTimeout
		cfg.StopTimeout = &v
	}
	if hc.RestartPolicy, err = parseRestart(f.restart); err != nil {
		return err
	}
	if hc.LogConfig, err = parseLogConfig(f.logDriver, f.logOpts); err != nil {
		return err
	}
	if cfg.Healthcheck, err = f.healthcheck(fl); err != nil {
		return err
	}
	return nil
}

// inlineSeccomp replaces seccomp=FILE by the file's JSON, as Docker's CLI
// does: the container keeps its profile even if the file changes or goes.
func inlineSeccomp(opts []string) ([]string, error) {
	out := make([]string, 0, len(opts))
	for _, o := range opts {
		k, v, ok := strings.Cut(o, "=")
		if !ok {
			k, v, ok = strings.Cut(o, ":")
		}
		if ok && k == "seccomp" && v != "unconfined" && v != "builtin" && !strings.HasPrefix(v, "{") {
			b, err := os.ReadFile(v)
			if err != nil {
				return nil, fmt.Errorf("opening seccomp profile (%s) failed: %w", v, err)
			}
			var buf bytes.Buffer
			if err := json.Compact(&buf, b); err != nil {
				return nil, fmt.Errorf("compacting json for seccomp profile (%s) failed: %w", v, err)
			}
			o = "seccomp=" + buf.String()
		}
		out = append(out, o)
	}
	return out, nil
}

// validateUserns accepts "", "host", "auto", "auto:size=N" and UID:GID:SIZE.
func validateUserns(s string) error {
	bad := fmt.Errorf("invalid --userns %q: use host, auto[:size=N] or UID:GID:SIZE", s)
	switch {
	case s == "" || s == "host" || s == "auto":
		return nil
	case strings.HasPrefix(s, "auto:"):
		k, v, ok := strings.Cut(strings.TrimPrefix(s, "auto:"), "=")
		if n, err := strconv.ParseUint(v, 10, 32); !ok || k != "size" || err != nil || n == 0 {
			return bad
		}
		return nil
	}
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return bad
	}
	for _, p := range parts {
		if _, err := strconv.ParseUint(p, 10, 32); err != nil {
			return bad
		}
	}
	if parts[2] == "0" {
		return bad
	}
	return nil
}

// parseDevice reads --device host[:container][:perms].
func parseDevice(s string) (container.DeviceMapping, error) {
	m := container.DeviceMapping{CgroupPermissions: "rwm"}
	parts := strings.Split(s, ":")
	isPerms := func(p string) bool { return p != "" && strings.Trim(p, "rwm") == "" && len(p) <= 3 }
	switch len(parts) {
	case 3:
		if !isPerms(parts[2]) {
			return m, fmt.Errorf("invalid device specification: %s", s)
		}
		m.CgroupPermissions = parts[2]
		m.PathInContainer = parts[1]
	case 2:
		if isPerms(parts[1]) {
			m.CgroupPermissions = parts[1]
		} else {
			m.PathInContainer = parts[1]
		}
	case 1:
	default:
		return m, fmt.Errorf("invalid device specification: %s", s)
	}
	m.PathOnHost = parts[0]
	if m.PathInContainer == "" {
		m.PathInContainer = m.PathOnHost
	}
	if !path.IsAbs(m.PathOnHost) || !path.IsAbs(m.PathInContainer) {
		return m, fmt.Errorf("invalid device specification: %s: device paths must be absolute", s)
	}
	return m, nil
}

// parseCPUs reads --cpus as a decimal number of CPUs, in nano-CPUs.
func parseCPUs(s string) (int64, error) {
	r, ok := new(big.Rat).SetString(s)
	if !ok || r.Sign() < 0 {
		return 0, fmt.Errorf("invalid argument %q for \"--cpus\" flag: failed to parse %v as a rational number", s, s)
	}
	nano := r.Mul(r, big.NewRat(1e9, 1))
	if !nano.IsInt() {
		return 0, fmt.Errorf("invalid argument %q for \"--cpus\" flag: value is too precise", s)
	}
	return nano.Num().Int64(), nil
}

// parseMount reads --mount's CSV fields into Docker's mount type.
func parseMount(s string) (mount.Mount, error) {
	rec, err := csv.NewReader(strings.NewReader(s)).Read()
	if err != nil {
		return mount.Mount{}, err
	}
	m := mount.Mount{Type: mount.TypeVolume}
	boolVal := func(k, v string, hasV bool) (bool, error) {
		if !hasV {
			return true, nil
		}
		switch strings.ToLower(v) {
		case "1", "true":
			return true, nil
		case "0", "false":
			return false, nil
		}
		return false, fmt.Errorf("invalid value for %s: %s", k, v)
	}
	vol := func() *mount.VolumeOptions {
		if m.VolumeOptions == nil {
			m.VolumeOptions = &mount.VolumeOptions{}
		}
		return m.VolumeOptions
	}
	bind := func() *mount.BindOptions {
		if m.BindOptions == nil {
			m.BindOptions = &mount.BindOptions{}
		}
		return m.BindOptions
	}
	tmpfs := func() *mount.TmpfsOptions {
		if m.TmpfsOptions == nil {
			m.TmpfsOptions = &mount.TmpfsOptions{}
		}
		return m.TmpfsOptions
	}
	for _, field := range rec {
		k, v, hasV := strings.Cut(field, "=")
		k = strings.ToLower(strings.TrimSpace(k))
		if !hasV && k != "readonly" && k != "ro" && k != "volume-nocopy" && k != "bind-nonrecursive" {
			return m, fmt.Errorf("invalid field '%s' must be a key=value pair", field)
		}
		switch k {
		case "type":
			m.Type = mount.Type(strings.ToLower(v))
		case "source", "src":
			m.Source = v
		case "target", "dst", "destination":
			m.Target = v
		case "readonly", "ro":
			if m.ReadOnly, err = boolVal(k, v, hasV); err != nil {
				return m, err
			}
		case "consistency":
			m.Consistency = mount.Consistency(v)
		case "bind-propagation":
			bind().Propagation = mount.Propagation(strings.ToLower(v))
			if !slices.Contains(mount.Propagations, bind().Propagation) {
				return m, fmt.Errorf("invalid bind-propagation: %s", v)
			}
		case "bind-nonrecursive":
			if bind().NonRecursive, err = boolVal(k, v, hasV); err != nil {
				return m, err
			}
		case "bind-recursive":
			// The docker CLI's names (API 1.44): enabled is the default
			// (submounts included, read-only too where possible),
			// disabled binds the top mount alone, writable keeps
			// submounts writable under a read-only bind (Docker 24's
			// read-only), readonly makes them read-only or fails.
			switch strings.ToLower(v) {
			case "enabled":
				bind()
			case "disabled":
				bind().NonRecursive = true
			case "writable":
				bind().ReadOnlyNonRecursive = true
			case "readonly":
				bind().ReadOnlyForceRecursive = true
			default:
				return m, fmt.Errorf("invalid value for %s: %s (must be \"enabled\", \"disabled\", \"writable\", or \"readonly\")", k, v)
			}
		case "volume-nocopy":
			if vol().NoCopy, err = boolVal(k, v, hasV); err != nil {
				return m, err
			}
		case "volume-label":
			lk, lv, _ := strings.Cut(v, "=")
			if vol().Labels == nil {
				vol().Labels = map[string]string{}
			}
			vol().Labels[lk] = lv
		case "volume-driver":
			if vol().DriverConfig == nil {
				vol().DriverConfig = &mount.Driver{}
			}
			vol().DriverConfig.Name = v
		case "volume-opt":
			ok, ov, _ := strings.Cut(v, "=")
			if vol().DriverConfig == nil {
				vol().DriverConfig = &mount.Driver{}
			}
			if vol().DriverConfig.Options == nil {
				vol().DriverConfig.Options = map[string]string{}
			}
			vol().DriverConfig.Options[ok] = ov
		case "volume-subpath":
			vol().Subpath = v
		case "tmpfs-size":
			n, err := units.RAMInBytes(v)
			if err != nil {
				return m, fmt.Errorf("invalid value for %s: %s", k, v)
			}
			tmpfs().SizeBytes = n
		case "tmpfs-mode":
			n, err := strconv.ParseUint(v, 8, 32)
			if err != nil {
				return m, fmt.Errorf("invalid value for %s: %s", k, v)
			}
			tmpfs().Mode = goMode(uint32(n))
		default:
			return m, fmt.Errorf("unexpected key '%s' in '%s'", k, field)
		}
	}
	if m.Target == "" {
		return m, fmt.Errorf("target is required")
	}
	if m.Type == mount.TypeBind && m.VolumeOptions != nil {
		return m, fmt.Errorf("cannot mix 'volume-*' options with mount type '%s'", m.Type)
	}
	if m.Type == mount.TypeVolume && m.BindOptions != nil {
		return m, fmt.Errorf("cannot mix 'bind-*' options with mount type '%s'", m.Type)
	}
	if o := m.BindOptions; o != nil && o.ReadOnlyNonRecursive && !m.ReadOnly {
		return m, fmt.Errorf("option 'bind-recursive=writable' requires 'readonly' to be specified in conjunction")
	}
	if o := m.BindOptions; o != nil && o.ReadOnlyForceRecursive {
		if !m.ReadOnly {
			return m, fmt.Errorf("option 'bind-recursive=readonly' requires 'readonly' to be specified in conjunction")
		}
		// A shared or slave bind would let mounts made later on the host
		// appear writable inside: the docker CLI wants rprivate said.
		if o.Propagation != mount.PropagationRPrivate {
			return m, fmt.Errorf("option 'bind-recursive=readonly' requires 'bind-propagation=rprivate' to be specified in conjunction")
		}
	}
	if m.Type != mount.TypeTmpfs && m.TmpfsOptions != nil {
		return m, fmt.Errorf("cannot mix 'tmpfs-*' options with mount type '%s'", m.Type)
	}
	return m, nil
}

// goMode turns permission bits with setuid/setgid/sticky into a FileMode.
func goMode(u uint32) os.FileMode {
	m := os.FileMode(u & 0o777)
	if u&0o4000 != 0 {
		m |= os.ModeSetuid
	}
	if u&0o2000 != 0 {
		m |= os.ModeSetgid
	}
	if u&0o1000 != 0 {
		m |= os.ModeSticky
	}
	return m
}

// parseSignal accepts "SIGTERM", "TERM" or a number.
func parseSignal(s string) (unix.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("invalid signal: %s", s)
		}
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	if rest, ok := strings.CutPrefix(name, "SIGRTMIN+"); ok {
		if n, err := strconv.Atoi(rest); err == nil && n >= 0 && 34+n <= 64 {
			return unix.Signal(34 + n), nil
		}
	}
	return 0, fmt.Errorf("invalid signal: %s", s)
}

// parseRestart reads --restart no|always|unless-stopped|on-failure[:N].
func parseRestart(s string) (container.RestartPolicy, error) {
	name, count, hasCount := strings.Cut(s, ":")
	p := container.RestartPolicy{Name: container.RestartPolicyMode(name)}
	if hasCount {
		n, err := strconv.Atoi(count)
		if err != nil {
			return p, fmt.Errorf("invalid restart policy format: maximum retry count must be an integer")
		}
		p.MaximumRetryCount = n
	}
	if name == "" {
		p.Name = container.RestartPolicyDisabled
	}
	if err := container.ValidateRestartPolicy(p); err != nil {
		return p, err
	}
	return p, nil
}

// jsonFileOpts are the options the json-file log driver takes.
var jsonFileOpts = map[string]bool{"max-size": true, "max-file": true, "compress": true, "labels": true,
	"labels-regex": true, "env": true, "env-regex": true, "tag": true}

// parseLogConfig reads --log-driver and --log-opt (json-file and none only).
func parseLogConfig(driver string, opts []string) (container.LogConfig, error) {
	lc := container.LogConfig{Type: driver}
	if lc.Type == "" {
		lc.Type = "json-file"
	}
	if lc.Type != "json-file" && lc.Type != "none" {
		return lc, fmt.Errorf("logging driver %q is not supported: use json-file or none", lc.Type)
	}
	for _, o := range opts {
		k, v, ok := strings.Cut(o, "=")
		if !ok {
			return lc, fmt.Errorf("invalid key value pair format in log-opt: %s", o)
		}
		if lc.Type != "json-file" || !jsonFileOpts[k] {
			return lc, fmt.Errorf("unknown log opt '%s' for %s log driver", k, lc.Type)
		}
		switch k {
		case "max-size":
			if n, err := units.RAMInBytes(v); err != nil || n <= 0 {
				return lc, fmt.Errorf("invalid max-size %q: must be a positive size such as 10m", v)
			}
		case "max-file":
			if n, err := strconv.Atoi(v); err != nil || n < 1 {
				return lc, fmt.Errorf("invalid max-file %q: must be a positive integer", v)
			}
		}
		if lc.Config == nil {
			lc.Config = map[string]string{}
		}
		lc.Config[k] = v
	}
	if lc.Config["max-file"] != "" && lc.Config["max-file"] != "1" && lc.Config["max-size"] == "" {
		return lc, fmt.Errorf("max-file can only be set when max-size is set")
	}
	return lc, nil
}

// healthcheck builds Config.Healthcheck from the --health-* flags, as
// Docker's CLI: --health-cmd runs through the shell (CMD-SHELL), and
// --no-healthcheck disables the image's check ({"NONE"}).
func (f *createFlags) healthcheck(fl *pflag.FlagSet) (*container.HealthConfig, error) {
	changed := false
	for _, n := range []string{"health-cmd", "health-interval", "health-timeout", "health-start-period", "health-start-interval", "health-retries"} {
		changed = changed || fl.Changed(n)
	}
	if f.noHealthcheck {
		if changed {
			return nil, fmt.Errorf("--no-healthcheck conflicts with --health-* options")
		}
		return &container.HealthConfig{Test: []string{"NONE"}}, nil
	}
	if !changed {
		return nil, nil
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"interval", f.healthInterval}, {"timeout", f.healthTimeout}, {"start-period", f.healthStart}, {"start-interval", f.healthStartInterv}} {
		if d.v < 0 {
			return nil, fmt.Errorf("--health-%s cannot be negative", d.name)
		}
		if d.v != 0 && d.v < time.Millisecond {
			return nil, fmt.Errorf("--health-%s must be at least 1ms", d.name)
		}
	}
	if f.healthRetries < 0 {
		return nil, fmt.Errorf("--health-retries cannot be negative")
	}
	hc := &container.HealthConfig{
		Interval: f.healthInterval, Timeout: f.healthTimeout, StartPeriod: f.healthStart,
		StartInterval: f.healthStartInterv, Retries: f.healthRetries,
	}
	if f.healthCmd != "" {
		hc.Test = []string{"CMD-SHELL", f.healthCmd}
	}
	return hc, nil
}
