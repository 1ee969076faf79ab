package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/cgroups"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/linux"
)

// CreateOptions are create's command-line options.
type CreateOptions struct {
	Bundle        string
	PidFile       string
	ConsoleSocket string
	NoPivot       bool
	PreserveFds   int
	// Console, when set, is used instead of ConsoleSocket (run -t).
	Console *os.File
	// Foreground keeps the init as our child so run can wait for it.
	Foreground bool

	spec    *specs.Spec // already parsed (run parses it before create)
	rawSpec []byte
}

// ParseBundle loads the bundle's spec into o, so a caller that needs the
// spec before Create (run, to know about the terminal) parses it once.
func (o *CreateOptions) ParseBundle() (*specs.Spec, error) {
	bundle, err := filepath.Abs(o.Bundle)
	if err != nil {
		return nil, err
	}
	o.spec, o.rawSpec, err = loadSpec(bundle)
	return o.spec, err
}

// Created is a container that create has set up, with the init process
// handle when the caller is its parent.
type Created struct {
	*Container
	Cmd *exec.Cmd
}

// LoadSpec reads and checks a bundle's config.json.
func LoadSpec(bundle string) (*specs.Spec, error) {
	s, _, err := loadSpec(bundle)
	return s, err
}

func loadSpec(bundle string) (*specs.Spec, []byte, error) {
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil, fmt.Errorf("bundle %s has no config.json: %w", bundle, errdefs.ErrNotFound)
		}
		return nil, nil, err
	}
	s, err := parseSpec(bundle, data)
	return s, data, err
}

func parseSpec(bundle string, data []byte) (*specs.Spec, error) {
	s := &specs.Spec{}
	if err := json.Unmarshal(data, s); err != nil {
		return nil, fmt.Errorf("parse %s/config.json: %w", bundle, err)
	}
	if s.Root == nil || s.Root.Path == "" {
		return nil, fmt.Errorf("config.json: root.path is required: %w", errdefs.ErrInvalidArgument)
	}
	if s.Process == nil {
		return nil, fmt.Errorf("config.json: process is required: %w", errdefs.ErrInvalidArgument)
	}
	if len(s.Process.Args) == 0 {
		return nil, fmt.Errorf("config.json: process.args must not be empty: %w", errdefs.ErrInvalidArgument)
	}
	if s.Linux == nil {
		s.Linux = &specs.Linux{}
	}
	return s, nil
}

// Create sets up a container from a bundle and leaves its init waiting for
// Start. On failure nothing is left behind: no process, cgroup or state.
func (r *Runtime) Create(id string, o *CreateOptions) (_ *Created, retErr error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	bundle, err := filepath.Abs(o.Bundle)
	if err != nil {
		return nil, err
	}
	mark("create")
	s, raw := o.spec, o.rawSpec
	if s == nil {
		if s, raw, err = loadSpec(bundle); err != nil {
			return nil, err
		}
	}
	mark("create: spec loaded")
	rootfs := s.Root.Path
	if !filepath.IsAbs(rootfs) {
		rootfs = filepath.Join(bundle, rootfs)
	}
	if rootfs, err = filepath.EvalSymlinks(rootfs); err != nil {
		return nil, fmt.Errorf("rootfs: %w", err)
	}
	if s.Process.Terminal && o.ConsoleSocket == "" && o.Console == nil {
		return nil, fmt.Errorf("process.terminal is set but no --console-socket was given: %w", errdefs.ErrInvalidArgument)
	}
	if !s.Process.Terminal && (o.ConsoleSocket != "" || o.Console != nil) {
		return nil, fmt.Errorf("--console-socket given but process.terminal is false: %w", errdefs.ErrInvalidArgument)
	}

	if err := os.MkdirAll(r.Root, 0o711); err != nil {
		return nil, err
	}
	dir := r.dir(id)
	if err := os.Mkdir(dir, 0o711); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("container %s: %w", id, errdefs.ErrAlreadyExists)
		}
		return nil, err
	}
	c := &Container{
		ID:      id,
		Bundle:  bundle,
		Rootfs:  rootfs,
		Created: time.Now().UTC(),
		Owner:   currentOwner(),
		Config:  raw,
		dir:     dir,
		spec:    s,

		Annotations: s.Annotations,
	}
	if s.Hooks != nil {
		c.HasPoststart, c.HasPoststop = len(s.Hooks.Poststart) > 0, len(s.Hooks.Poststop) > 0
	}
	var cg cgroups.Manager
	var cmd *exec.Cmd
	var prepared chan error // cgroup directories being made, until received
	defer func() {
		if retErr == nil {
			return
		}
		if prepared != nil {
			<-prepared
		}
		if cmd != nil && cmd.Process != nil {
			_ = cmd.Process.Kill()
			_, _ = cmd.Process.Wait()
		}
		if cg != nil {
			_ = cg.Destroy()
		}
		_ = os.RemoveAll(dir)
	}()

	flags, join, err := namespaceSetup(s.Linux)
	if err != nil {
		return nil, err
	}
	// The cgroup and time namespaces are unshared by the init itself: a
	// cgroup namespace is rooted where the process is when it is created, so
	// it must come after the move into the container's cgroup; and a time
	// namespace needs its offsets written before anything runs in it.
	cgroupNS := flags&unix.CLONE_NEWCGROUP != 0
	timeNS := flags&unix.CLONE_NEWTIME != 0
	flags &^= unix.CLONE_NEWCGROUP | unix.CLONE_NEWTIME
	userNS := flags&unix.CLONE_NEWUSER != 0 || join[specs.UserNamespace] != ""
	req := &spawnRequest{
		cloneFlags: flags,
		join:       join,
		setsid:     true,
		stdin:      os.Stdin,
		stdout:     os.Stdout,
		stderr:     os.Stderr,
	}
	if join[specs.UserNamespace] != "" {
		// Namespaces owned by a joined user namespace must be created from
		// inside it: the child's constructor does that after joining.
		if flags&unix.CLONE_NEWPID != 0 {
			return nil, fmt.Errorf("joining a user namespace by path while creating a new PID namespace is not supported: %w", errdefs.ErrNotSupported)
		}
		req.unshareFlags = flags & (unix.CLONE_NEWNS | unix.CLONE_NEWIPC | unix.CLONE_NEWUTS)
		req.cloneFlags &^= req.unshareFlags
	}
	if flags&unix.CLONE_NEWUSER != 0 {
		if len(s.Linux.UIDMappings) == 0 || len(s.Linux.GIDMappings) == 0 {
			return nil, fmt.Errorf("a new user namespace needs uidMappings and gidMappings: %w", errdefs.ErrInvalidArgument)
		}
		req.uidMaps, req.gidMaps = idMaps(s.Linux.UIDMappings), idMaps(s.Linux.GIDMappings)
	}
	for i := 0; i < o.PreserveFds; i++ {
		req.extra = append(req.extra, os.NewFile(uintptr(3+i), "preserved"))
	}
	cfg := &initConfig{
		ID:         id,
		Bundle:     bundle,
		Rootfs:     rootfs,
		Spec:       s,
		NoPivot:    o.NoPivot,
		Process:    s.Process,
		UserNS:     userNS,
		CgroupNS:   cgroupNS,
		NewMount:   flags&unix.CLONE_NEWNS != 0,
		NewUTS:     flags&unix.CLONE_NEWUTS != 0 || join[specs.UTSNamespace] != "",
		ConsoleFd:  -1,
		PreserveFd: o.PreserveFds,
		Hooks:      s.Hooks != nil && (len(s.Hooks.Prestart) > 0 || len(s.Hooks.CreateRuntime) > 0), //nolint:staticcheck // Prestart is deprecated but still honoured.
	}
	cfg.TimeNS = timeNS

	// The start socket: the init blocks in accept() until `start` connects.
	mark("create: state dir")
	listener, err := listenStart(dir)
	if err != nil {
		return nil, err
	}
	defer listener.Close()
	req.extra = append(req.extra, listener)
	cfg.ListenFd = 3 + len(req.extra) - 1

	closeConsole, err := req.addConsole(cfg, o.Console, o.ConsoleSocket)
	if err != nil {
		return nil, err
	}
	defer closeConsole()

	// The cgroup exists, with its limits, before the init needs it (the init
	// bind-mounts it, and must never run in a half-configured cgroup: a
	// device rule list is written one rule at a time, starting with
	// deny-all). Making it overlaps with starting the init; moving the init
	// in comes after.
	if cg, err = cgroups.New(s.Linux.CgroupsPath, id); err != nil {
		return nil, err
	}
	c.CgroupPath = cg.Path()
	c.cg = cg
	cfg.CgroupPath = c.CgroupPath
	// Record the container before anything exists on the host: if this
	// process is killed from here on, `delete` finds the cgroup to remove
	// (a record without a pid reads as stopped).
	if err := c.save(); err != nil {
		return nil, err
	}
	prepared = make(chan error, 1)
	go func() {
		err := cg.Prepare()
		if err == nil {
			err = cg.Set(withDefaultDevices(s.Linux))
		}
		if err == nil {
			// Only now: the grace period holds the kernel's cgroup lock,
			// which Prepare and Set need too.
			cgroups.Prewarm()
		}
		prepared <- err
	}()
	// A new network namespace takes milliseconds to build; the init
	// unshares it itself, in parallel with our cgroup work, instead of at
	// clone time. (Joining or user-namespace cases keep the clone flag.)
	if flags&unix.CLONE_NEWNET != 0 && flags&unix.CLONE_NEWUSER == 0 {
		req.cloneFlags &^= unix.CLONE_NEWNET
		cfg.NetNS = true
	}
	// The config is queued on the sync socket before the init exists, so the
	// init starts working the moment its Go runtime is up.
	req.first = &syncMsg{Type: msgConfig, Config: cfg}
	mark("create: spawn")
	cmd, sock, err := spawn(req)
	if err != nil {
		return nil, err
	}
	mark("create: spawned")
	defer sock.Close()
	c.Pid = cmd.Process.Pid
	if c.PidStart, err = pidStartTime(c.Pid); err != nil {
		return nil, fmt.Errorf("container init exited during setup: %w", err)
	}
	c.NamespacePaths = namespacePaths(c.Pid, s.Linux, join)
	state := &specs.State{Version: specs.Version, ID: id, Status: StatusCreating, Pid: c.Pid, Bundle: bundle, Annotations: s.Annotations}
	err = <-prepared
	prepared = nil
	if err != nil {
		return nil, fmt.Errorf("cgroup: %w", err)
	}
	mark("create: cgroup ready")
	if err := writeMsg(sock, &syncMsg{Type: msgPrepared}); err != nil {
		return nil, initFailed(sock, err)
	}
	if err := cg.Apply(c.Pid); err != nil {
		return nil, fmt.Errorf("cgroup: %w", err)
	}
	mark("create: init in cgroup")
	if s.Process.OOMScoreAdj != nil {
		// Written from the host's /proc: the container's own /proc is not
		// mounted yet and is not to be trusted.
		err := os.WriteFile("/proc/"+strconv.Itoa(c.Pid)+"/oom_score_adj", []byte(strconv.Itoa(*s.Process.OOMScoreAdj)), 0)
		if err != nil {
			if errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) {
				return nil, fmt.Errorf("set oomScoreAdj %d: %w (lowering it needs CAP_SYS_RESOURCE)", *s.Process.OOMScoreAdj, err)
			}
			return nil, fmt.Errorf("set oomScoreAdj: %w", err)
		}
	}
	if err := writeMsg(sock, &syncMsg{Type: msgPlaced, State: state}); err != nil {
		return nil, initFailed(sock, err)
	}
	if cfg.Hooks {
		if _, err := expect(sock, msgHooks); err != nil {
			return nil, err
		}
		//nolint:staticcheck // Prestart is deprecated but still honoured.
		if err := runHooks("prestart", s.Hooks.Prestart, state); err != nil {
			_ = writeMsg(sock, &syncMsg{Type: msgError, Error: err.Error()})
			return nil, err
		}
		if err := runHooks("createRuntime", s.Hooks.CreateRuntime, state); err != nil {
			_ = writeMsg(sock, &syncMsg{Type: msgError, Error: err.Error()})
			return nil, err
		}
		if err := writeMsg(sock, &syncMsg{Type: msgHooksDone}); err != nil {
			return nil, err
		}
	}
	if _, err := expect(sock, msgReady); err != nil {
		return nil, err
	}
	mark("create: init ready")
	if err := c.save(); err != nil {
		return nil, err
	}
	if o.PidFile != "" {
		if err := writePidFile(o.PidFile, c.Pid); err != nil {
			return nil, err
		}
	}
	if !o.Foreground {
		// Release the child: nobody here will wait for it.
		_ = cmd.Process.Release()
	}
	return &Created{Container: c, Cmd: cmd}, nil
}

func namespacePaths(pid int, l *specs.Linux, join map[specs.LinuxNamespaceType]string) map[specs.LinuxNamespaceType]string {
	out := map[specs.LinuxNamespaceType]string{}
	for _, ns := range l.Namespaces {
		out[ns.Type] = fmt.Sprintf("/proc/%d/ns/%s", pid, linux.NamespaceProcName(ns.Type))
	}
	return out
}

// listenStart binds the start socket inside the state directory. The path
// goes through /proc/self/fd so its length never hits the 108-byte limit of
// sun_path, however deep the state root is.
func listenStart(dir string) (*os.File, error) {
	d, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(d)
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	addr := &unix.SockaddrUnix{Name: "/proc/self/fd/" + strconv.Itoa(d) + "/" + startSock}
	if err := unix.Bind(fd, addr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("start socket: %w", err)
	}
	if err := unix.Listen(fd, 1); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("start socket: %w", err)
	}
	return os.NewFile(uintptr(fd), "start-listener"), nil
}

// addConsole passes the terminal's socket to the child: the caller's own
// (run -t) or a connection to --console-socket. The returned func closes
// what addConsole opened.
func (req *spawnRequest) addConsole(cfg *initConfig, console *os.File, socket string) (func(), error) {
	done := func() {}
	if console == nil && socket != "" {
		c, err := dialConsoleSocket(socket)
		if err != nil {
			return nil, err
		}
		console, done = c, func() { c.Close() }
	}
	if console != nil {
		req.extra = append(req.extra, console)
		cfg.ConsoleFd = 3 + len(req.extra) - 1
	}
	return done, nil
}

func dialConsoleSocket(path string) (*os.File, error) {
	conn, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("console socket %s: %w", path, err)
	}
	defer conn.Close()
	return conn.File()
}

// writePidFile writes the pid atomically, as containerd expects.
func writePidFile(path string, pid int) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	tmp := filepath.Join(filepath.Dir(abs), "."+filepath.Base(abs)+".tmp")
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(pid)), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, abs)
}

// currentOwner is empty for root, like runc; other users are recorded by
// uid (no user database lookup: the binary is static and must not load NSS).
func currentOwner() string {
	if os.Geteuid() == 0 {
		return ""
	}
	return strconv.Itoa(os.Geteuid())
}

// withDefaultDevices returns the spec's resources with device-cgroup rules
// added for the devices the runtime itself creates (like runc does): a spec
// that denies every device still gets a working /dev/null, and the devices
// it lists are usable.
func withDefaultDevices(l *specs.Linux) *specs.LinuxResources {
	res := specs.LinuxResources{}
	if l.Resources != nil {
		res = *l.Resources
	}
	if len(res.Devices) == 0 {
		return &res
	}
	i64 := func(v int64) *int64 { return &v }
	rules := append([]specs.LinuxDeviceCgroup{}, res.Devices...)
	rules = append(rules,
		specs.LinuxDeviceCgroup{Allow: true, Type: "c", Access: "m"},
		specs.LinuxDeviceCgroup{Allow: true, Type: "b", Access: "m"},
	)
	for _, d := range [][2]int64{{1, 3}, {1, 5}, {1, 7}, {1, 8}, {1, 9}, {5, 0}, {5, 1}, {5, 2}} {
		rules = append(rules, specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i64(d[0]), Minor: i64(d[1]), Access: "rwm"})
	}
	rules = append(rules, specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i64(136), Access: "rwm"})
	for _, d := range l.Devices {
		t := d.Type
		if t == "u" {
			t = "c"
		}
		if t == "p" {
			continue
		}
		rules = append(rules, specs.LinuxDeviceCgroup{Allow: true, Type: t, Major: i64(d.Major), Minor: i64(d.Minor), Access: "rwm"})
	}
	res.Devices = rules
	return &res
}

// initFailed explains a failed write to the init: its last message says why.
func initFailed(sock *os.File, err error) error {
	if _, rerr := readMsg(sock); rerr != nil {
		return rerr
	}
	return fmt.Errorf("init exited during setup: %w", err)
}

// Prewarm starts the kernel work that the container's first cgroup move
// waits for (see cgroups.Prewarm). Front ends call it first thing when
// they are about to create or exec, so that it overlaps their parsing.
func Prewarm() { cgroups.Prewarm() }
