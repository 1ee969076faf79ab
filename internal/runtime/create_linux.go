package runtime

import (
	"errors"
	"fmt"
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
	// AutoStart lets the workload run as soon as the container is set up,
	// without waiting for Start: what run does, minus a round trip.
	AutoStart bool

	bundle *bundleSpec // read by ReadBundle
}

// ReadBundle reads the bundle's config.json into o and returns whether the
// process wants a terminal, for callers (run) that must know before Create.
func (o *CreateOptions) ReadBundle() (terminal bool, err error) {
	if o.bundle == nil {
		if o.bundle, err = readBundle(o.Bundle); err != nil {
			return false, err
		}
	}
	return o.bundle.terminal(), nil
}

// Created is a container that create has set up, with the init process
// handle when the caller is its parent.
type Created struct {
	*Container
	Cmd *exec.Cmd
}

// Create sets up a container from a bundle and leaves its init waiting for
// Start. On failure nothing is left behind: no process, cgroup or state.
//
// The order is chosen for speed, since this is the path every container
// start takes. config.json is decoded once, without reflection
// (specwire.DecodeJSON), so the init starts at once; the cgroup is built
// while its Go runtime starts up and the init enters it without the
// grace-period wait of a process move (cgroupjob_linux.go); new
// network/IPC/UTS namespaces are built by a thread of ours at the same time.
func (r *Runtime) Create(id string, o *CreateOptions) (_ *Created, retErr error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	mark("create")
	if _, err := o.ReadBundle(); err != nil {
		return nil, err
	}
	b := o.bundle
	s := b.spec
	if b.terminal() && o.ConsoleSocket == "" && o.Console == nil {
		return nil, fmt.Errorf("process.terminal is set but no --console-socket was given: %w", errdefs.ErrInvalidArgument)
	}
	if !b.terminal() && (o.ConsoleSocket != "" || o.Console != nil) {
		return nil, fmt.Errorf("--console-socket given but process.terminal is false: %w", errdefs.ErrInvalidArgument)
	}
	ns, err := planNamespaces(s.Linux)
	if err != nil {
		return nil, err
	}
	var late *nsThread
	if ns.late != 0 && ns.lateByParent {
		// A thread of ours builds them (a network namespace takes a
		// millisecond or more) while the rest is set up and the init
		// starts; the init joins them through that thread's /proc entries.
		late = newNSThread(ns.late)
		defer late.release()
	}
	rootfs, err := b.rootfs()
	if err != nil {
		return nil, err
	}
	// The state directory is the lock on the id: mkdir fails if it exists.
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
		Bundle:  b.dir,
		Rootfs:  rootfs,
		Created: time.Now().UTC(),
		Owner:   currentOwner(),
		Config:  b.raw,
		dir:     dir,
		spec:    s,

		Annotations: s.Annotations,
	}
	if s.Hooks != nil {
		c.HasPoststart, c.HasPoststop = len(s.Hooks.Poststart) > 0, len(s.Hooks.Poststop) > 0
	}
	var cmd *exec.Cmd
	// How the init enters its cgroup (cgroupjob_linux.go).
	selfMove := cgroups.DetectMode() != cgroups.Unified && !ns.userNS
	job := startCgroupJob(b, id)
	recorded := false
	record := func() {
		job.records <- *c
		recorded = true
	}
	if !selfMove {
		// The directories must exist before the fork, so the record goes
		// first without the init's pid; it is saved again at the end.
		record()
	}
	defer func() {
		if retErr == nil {
			return
		}
		if !recorded {
			close(job.records)
		}
		<-job.finished
		if cmd != nil && cmd.Process != nil {
			_ = cmd.Process.Kill()
			_, _ = cmd.Process.Wait()
		}
		if job.m != nil {
			_ = job.m.Destroy()
		}
		_ = os.RemoveAll(dir)
	}()

	req := &spawnRequest{
		cloneFlags:   ns.clone,
		unshareFlags: ns.unshareInChild,
		join:         ns.join,
		uidMaps:      ns.uidMaps,
		gidMaps:      ns.gidMaps,
		setsid:       true,
		stdin:        os.Stdin,
		stdout:       os.Stdout,
		stderr:       os.Stderr,
	}
	for i := 0; i < o.PreserveFds; i++ {
		req.extra = append(req.extra, os.NewFile(uintptr(3+i), "preserved"))
	}
	cfg := &initConfig{
		ID:         id,
		Bundle:     b.dir,
		Rootfs:     rootfs,
		NoPivot:    o.NoPivot,
		UserNS:     ns.userNS,
		CgroupNS:   ns.cgroupNS,
		TimeNS:     ns.timeNS,
		LateNS:     uint64(ns.late),
		NewMount:   ns.newMount,
		NewUTS:     ns.newUTS,
		ConsoleFd:  -1,
		ListenFd:   -1,
		PreserveFd: o.PreserveFds,
		AutoStart:  o.AutoStart,
	}
	if !o.AutoStart {
		// The init blocks in accept() on this socket until `start` connects.
		listener, err := listenStart(dir)
		if err != nil {
			return nil, err
		}
		defer listener.Close()
		req.extra = append(req.extra, listener)
		cfg.ListenFd = 3 + len(req.extra) - 1
	}
	closeConsole, err := req.addConsole(cfg, o.Console, o.ConsoleSocket)
	if err != nil {
		return nil, err
	}
	defer closeConsole()

	if !selfMove {
		// Born inside: the directories must exist before the fork.
		if err := <-job.known; err != nil {
			return nil, fmt.Errorf("cgroup: %w", err)
		}
		if err := <-job.dirs; err != nil {
			return nil, fmt.Errorf("cgroup: %w", err)
		}
		// Under a pids limit of 1 the forking thread and the init would not
		// both fit for that instant: the init is moved in afterwards then.
		if !b.tightPids() {
			req.cgroup = job.m
		}
	}
	mark("create: spawn")
	cmd, sock, err := spawn(req)
	if err != nil {
		return nil, err
	}
	bornInCgroup := req.bornInCgroup
	mark("create: spawned")
	defer sock.Close()
	c.Pid = cmd.Process.Pid
	if c.PidStart, err = pidStartTime(c.Pid); err != nil {
		return nil, fmt.Errorf("container init exited during setup: %w", err)
	}

	c.NamespacePaths = namespacePaths(c.Pid, s.Linux)
	cfg.Spec, cfg.Process = s, s.Process
	if selfMove {
		// The init can start before its cgroup exists, so the record is
		// saved once, complete: every state file is a new inode, which on
		// a busy ext4 costs more than the write.
		record()
		// The config needs only the cgroup's path; its directories and
		// limits are awaited below, before msgPrepared.
		if err := <-job.known; err != nil {
			return nil, fmt.Errorf("cgroup: %w", err)
		}
		mark("create: cgroup known")
	}
	cg := job.m
	c.CgroupPath, c.cg = cg.Path(), cg
	cfg.CgroupPath = c.CgroupPath
	if late != nil {
		cfg.LateNSDir = late.wait()
		mark("create: namespaces built")
	}
	//nolint:staticcheck // Prestart is deprecated but still honoured.
	cfg.Hooks = s.Hooks != nil && (len(s.Hooks.Prestart) > 0 || len(s.Hooks.CreateRuntime) > 0)
	if err := writeMsg(sock, &syncMsg{Type: msgConfig, Config: cfg}); err != nil {
		return nil, initFailed(sock, err)
	}
	mark("create: config sent")
	state := &specs.State{Version: specs.Version, ID: id, Status: StatusCreating, Pid: c.Pid, Bundle: b.dir, Annotations: s.Annotations}
	if err := <-job.done; err != nil {
		return nil, fmt.Errorf("cgroup: %w", err)
	}
	prepared := &syncMsg{Type: msgPrepared}
	switch {
	case selfMove && !needsUnified(job.res):
		prepared.Files = cg.ThreadFiles()
		fds, err := openFiles(prepared.Files)
		if err != nil {
			return nil, fmt.Errorf("cgroup: %w", err)
		}
		defer closeFDs(fds)
		prepared.FDs = fds
	case !bornInCgroup || selfMove:
		// The fallbacks: a process move, with its grace period.
		if err := cg.Apply(c.Pid); err != nil {
			return nil, fmt.Errorf("cgroup: %w", err)
		}
	}
	if err := writeMsg(sock, prepared); err != nil {
		return nil, initFailed(sock, err)
	}
	mark("create: init in cgroup")
	if s.Process.OOMScoreAdj != nil {
		if err := setOOMScoreAdj(c.Pid, *s.Process.OOMScoreAdj); err != nil {
			return nil, err
		}
	}
	if err := writeMsg(sock, &syncMsg{Type: msgPlaced, State: state}); err != nil {
		return nil, initFailed(sock, err)
	}
	if cfg.Hooks {
		if err := runCreateHooks(sock, s.Hooks, state); err != nil {
			return nil, err
		}
	}
	if _, err := expect(sock, msgReady); err != nil {
		return nil, err
	}
	mark("create: init ready")
	if o.AutoStart {
		// The sync socket is close-on-exec in the init: EOF means the
		// workload is running; a message means it could not be started.
		if err := awaitExec(sock); err != nil {
			return nil, err
		}
		mark("create: started")
	}
	if !selfMove {
		if err := c.save(); err != nil {
			return nil, err
		}
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

// nsThread is a locked OS thread of ours that sits in new namespaces until
// released. Until then its /proc/PID/task/TID/ns directory names them;
// released, the thread exits (it is never unlocked, so Go does not reuse
// it), and the namespaces live on only if someone joined them.
type nsThread struct {
	ready chan string // the ns directory, or "" if unshare failed
	done  chan struct{}
}

func newNSThread(flags uintptr) *nsThread {
	t := &nsThread{ready: make(chan string, 1), done: make(chan struct{})}
	onDisposableThread(func() {
		if err := unix.Unshare(int(flags)); err != nil {
			t.ready <- ""
			return
		}
		t.ready <- fmt.Sprintf("/proc/%d/task/%d/ns", os.Getpid(), unix.Gettid())
		<-t.done
	})
	return t
}

// wait returns the namespaces' directory once they exist ("" on failure:
// the init then makes its own).
func (t *nsThread) wait() string { return <-t.ready }

// release lets the thread go. The init must have joined (or given up on)
// the namespaces by then: Create releases it only after the init is ready.
func (t *nsThread) release() { close(t.done) }

// setOOMScoreAdj writes the init's oom_score_adj from the host's /proc:
// the container's own /proc is not mounted yet and is not to be trusted.
func setOOMScoreAdj(pid, v int) error {
	err := os.WriteFile("/proc/"+strconv.Itoa(pid)+"/oom_score_adj", []byte(strconv.Itoa(v)), 0)
	if err == nil {
		return nil
	}
	if errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) {
		return fmt.Errorf("set oomScoreAdj %d: %w (lowering it needs CAP_SYS_RESOURCE)", v, err)
	}
	return fmt.Errorf("set oomScoreAdj: %w", err)
}

// runCreateHooks runs the prestart and createRuntime hooks when the init
// asks for them (mounts done, before pivot_root).
func runCreateHooks(sock *os.File, h *specs.Hooks, state *specs.State) error {
	if _, err := expect(sock, msgHooks); err != nil {
		return err
	}
	// prestart is runc's older hook: it sees the container as created,
	// as runc shows it; createRuntime sees it being created.
	created := *state
	created.Status = StatusCreated
	//nolint:staticcheck // Prestart is deprecated but still honoured.
	for _, run := range []struct {
		kind  string
		hooks []specs.Hook
		state *specs.State
	}{{"prestart", h.Prestart, &created}, {"createRuntime", h.CreateRuntime, state}} {
		if err := runHooks(run.kind, run.hooks, run.state); err != nil {
			_ = writeMsg(sock, &syncMsg{Type: msgError, Error: err.Error()})
			return err
		}
	}
	return writeMsg(sock, &syncMsg{Type: msgHooksDone})
}

// initFailed explains a failed write to the init: its last message says why.
func initFailed(sock *os.File, err error) error {
	if _, rerr := readMsg(sock); rerr != nil {
		return rerr
	}
	return fmt.Errorf("init exited during setup: %w", err)
}

// namespacePaths names the init's namespace files, which exec joins.
func namespacePaths(pid int, l *specs.Linux) map[specs.LinuxNamespaceType]string {
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

// dialConsoleSocket connects to --console-socket. Plain syscalls: the Go
// net package would cost every start its initialisation for one connect.
func dialConsoleSocket(path string) (*os.File, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("console socket %s: %w", path, err)
	}
	return os.NewFile(uintptr(fd), "console-socket"), nil
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
