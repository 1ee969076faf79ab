package runtime

import (
	"errors"
	"fmt"

	"os"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/rootfs"
)

// Init is the body of a container's init (and of an exec'd process) before
// it becomes the workload. It runs in the child that spawn started, on the
// main OS thread, which main locks for it: per-thread state (capabilities,
// credentials, seccomp, the cgroup namespace) set here is what execve
// carries into the workload. It returns only on failure.
func Init() error {
	fd, err := strconv.Atoi(os.Getenv(envInit))
	if err != nil {
		return fmt.Errorf("init: bad %s", envInit)
	}
	os.Unsetenv(envInit)
	sock := os.NewFile(uintptr(fd), "sync")
	unix.CloseOnExec(fd)
	mark("init: go main")
	m, err := expect(sock, msgConfig)
	mark("init: config received")
	if err != nil {
		return err
	}
	cfg := m.Config
	if err := cfg.run(sock); err != nil {
		if werr := writeMsg(sock, &syncMsg{Type: msgError, Error: err.Error()}); werr == nil {
			// The runtime reports it: stderr here is the container's.
			return ErrReported
		}
		return err
	}
	return nil
}

// ErrReported is what Init returns after its failure was handed to the
// runtime process, which reports it; main then exits quietly.
var ErrReported = errors.New("init failure reported to the runtime")

func (cfg *initConfig) run(sock *os.File) error {
	if cfg.Exec {
		return cfg.runExec(sock)
	}
	s := cfg.Spec
	prepared, placed := false, false
	var state *specs.State // for hooks; arrives with msgPlaced
	waitPrepared := func() error {
		if prepared {
			return nil
		}
		prepared = true
		m, err := expectWithFDs(sock, msgPrepared)
		if err != nil {
			return err
		}
		defer closeFDs(m.FDs)
		// Move this thread (the one that becomes the workload) into the
		// cgroup, if the parent left that to us: see cgroupjob_linux.go.
		// The parent passes the files open (fdpass_linux.go).
		if len(m.FDs) != len(m.Files) {
			return fmt.Errorf("sync: %d cgroup files but %d descriptors", len(m.Files), len(m.FDs))
		}
		for i, fd := range m.FDs {
			if _, err := unix.Write(fd, []byte("0")); err != nil {
				return fmt.Errorf("enter cgroup %s: %w", m.Files[i], err)
			}
		}
		return nil
	}
	waitPlaced := func() error {
		if placed {
			return nil
		}
		placed = true
		if err := waitPrepared(); err != nil {
			return err
		}
		m, err := expect(sock, msgPlaced)
		if err != nil {
			return err
		}
		state = m.State
		mark("init: placed in cgroup")
		if cfg.CgroupNS {
			if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
				return fmt.Errorf("unshare cgroup namespace: %w", err)
			}
		}
		return nil
	}
	if cfg.LateNS != 0 {
		// Per-thread in Go, and this is the thread that execs the workload
		// (and the thread group leader whose /proc/PID/ns files others join).
		if err := enterLateNamespaces(uintptr(cfg.LateNS), cfg.LateNSDir); err != nil {
			return err
		}
	}
	if cfg.TimeNS {
		if err := setupTimeNS(s.Linux.TimeOffsets); err != nil {
			return err
		}
	}
	// A cgroup mount needs the cgroup (msgPrepared), and in a cgroup
	// namespace the process inside it (msgPlaced); device nodes need the
	// devices cgroup's rules complete (msgPrepared), since the init may
	// already be inside the cgroup while they are written.
	beforeCgroup := waitPrepared
	if cfg.CgroupNS {
		beforeCgroup = waitPlaced
	}
	rc := &rootfs.Config{Spec: s, Rootfs: cfg.Rootfs, UserNS: cfg.UserNS, CgroupNS: cfg.CgroupNS, CgroupPath: cfg.CgroupPath,
		BeforeCgroup: beforeCgroup, BeforeDevices: waitPrepared}
	if cfg.NewMount {
		if err := rootfs.PrepareRoot(rc); err != nil {
			return err
		}
		if err := rootfs.MountAll(rc); err != nil {
			return err
		}
		mark("init: mounts done")
	}
	// Hooks get the OCI state, which needs the host pid (msgPlaced). Without
	// hooks the root switch and the rest go ahead while the parent is still
	// moving us into the cgroup.
	if cfg.Hooks || (s.Hooks != nil && len(s.Hooks.CreateContainer) > 0) {
		if err := waitPlaced(); err != nil {
			return err
		}
	}
	if cfg.Hooks {
		if err := writeMsg(sock, &syncMsg{Type: msgHooks}); err != nil {
			return err
		}
		if _, err := expect(sock, msgHooksDone); err != nil {
			return err
		}
	}
	if s.Hooks != nil {
		if err := runHooks("createContainer", s.Hooks.CreateContainer, state); err != nil {
			return err
		}
	}
	// The cgroup's files are reachable by their host paths only until the
	// root switch.
	if err := waitPrepared(); err != nil {
		return err
	}
	switch {
	case cfg.NewMount && cfg.NoPivot:
		if err := rootfs.MoveRoot(cfg.Rootfs); err != nil {
			return err
		}
	case cfg.NewMount:
		if err := rootfs.PivotRoot(cfg.Rootfs); err != nil {
			if !errors.Is(err, unix.EINVAL) {
				return err
			}
			// pivot_root is impossible from an initramfs root.
			if err := rootfs.MoveRoot(cfg.Rootfs); err != nil {
				return err
			}
		}
	default:
		if err := unix.Chroot(cfg.Rootfs); err != nil {
			return &os.PathError{Op: "chroot", Path: cfg.Rootfs, Err: err}
		}
		if err := unix.Chdir("/"); err != nil {
			return err
		}
	}
	mark("init: root switched")
	// Like runc: a missing working directory is created (before the root
	// may become read-only), and HOME comes from the container's passwd.
	if cwd := cfg.Process.Cwd; cwd != "" {
		if _, err := os.Stat(cwd); errors.Is(err, os.ErrNotExist) {
			if err := os.MkdirAll(cwd, 0o755); err != nil {
				return fmt.Errorf("create cwd %s: %w", cwd, err)
			}
		}
	}
	ensureHome(cfg.Process)
	if cfg.ConsoleFd >= 0 {
		if err := setupConsole(cfg.ConsoleFd, cfg.Process); err != nil {
			return err
		}
	}
	if cfg.NewMount {
		if err := rootfs.Finalize(s); err != nil {
			return err
		}
	} else if s.Linux != nil && len(s.Linux.Sysctl) > 0 {
		return fmt.Errorf("sysctl needs a mount namespace")
	}
	if s.Hostname != "" || s.Domainname != "" {
		if !cfg.NewUTS {
			return fmt.Errorf("hostname/domainname need a UTS namespace")
		}
		if s.Hostname != "" {
			if err := unix.Sethostname([]byte(s.Hostname)); err != nil {
				return fmt.Errorf("sethostname: %w", err)
			}
		}
		if s.Domainname != "" {
			if err := unix.Setdomainname([]byte(s.Domainname)); err != nil {
				return fmt.Errorf("setdomainname: %w", err)
			}
		}
	}
	if err := setRlimits(cfg.Process.Rlimits); err != nil {
		return err
	}
	path, err := lookPath(cfg.Process)
	if err != nil {
		return err
	}
	if err := waitPlaced(); err != nil {
		return err
	}
	mark("init: ready")
	if err := writeMsg(sock, &syncMsg{Type: msgReady}); err != nil {
		return err
	}
	// Errors from here on go to whoever waits for the start: with
	// AutoStart the parent on the sync socket (Init sends them), otherwise
	// the `start` command on its connection. Both are close-on-exec, so a
	// successful execve reads as EOF.
	var conn *os.File
	if !cfg.AutoStart {
		sock.Close()
		if conn, err = acceptStart(cfg.ListenFd); err != nil {
			return err
		}
	}
	err = cfg.startWorkload(path, state)
	if conn != nil {
		fmt.Fprint(conn, err.Error())
	}
	return err
}

// startWorkload runs the startContainer hooks and becomes the workload.
func (cfg *initConfig) startWorkload(path string, state *specs.State) error {
	s := cfg.Spec
	if s.Hooks != nil && len(s.Hooks.StartContainer) > 0 {
		state.Status = StatusCreated
		if err := runHooks("startContainer", s.Hooks.StartContainer, state); err != nil {
			return err
		}
	}
	mark("init: exec")
	return execProcess(cfg.Process, path, cfg.PreserveFd, s.Linux)
}

func acceptStart(fd int) (*os.File, error) {
	nfd, _, err := unix.Accept4(fd, unix.SOCK_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("wait for start: %w", err)
	}
	unix.Close(fd)
	conn := os.NewFile(uintptr(nfd), "start")
	var b [1]byte
	if _, err := conn.Read(b[:]); err != nil {
		return nil, fmt.Errorf("wait for start: %w", err)
	}
	return conn, nil
}

func setupTimeNS(offsets map[string]specs.LinuxTimeOffset) error {
	if err := unix.Unshare(unix.CLONE_NEWTIME); err != nil {
		return fmt.Errorf("unshare time namespace: %w", err)
	}
	var b strings.Builder
	for clock, off := range offsets {
		fmt.Fprintf(&b, "%s %d %d\n", clock, off.Secs, off.Nanosecs)
	}
	if b.Len() == 0 {
		return nil
	}
	if err := os.WriteFile("/proc/self/timens_offsets", []byte(b.String()), 0); err != nil {
		return fmt.Errorf("time offsets: %w", err)
	}
	return nil
}

var rlimitNames = map[string]int{
	"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_CPU": unix.RLIMIT_CPU,
	"RLIMIT_DATA": unix.RLIMIT_DATA, "RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS,
	"RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK, "RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE, "RLIMIT_NICE": unix.RLIMIT_NICE,
	"RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_NPROC": unix.RLIMIT_NPROC, "RLIMIT_RSS": unix.RLIMIT_RSS,
	"RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO, "RLIMIT_RTTIME": unix.RLIMIT_RTTIME, "RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING,
	"RLIMIT_STACK": unix.RLIMIT_STACK,
}

func setRlimits(limits []specs.POSIXRlimit) error {
	for _, l := range limits {
		res, ok := rlimitNames[l.Type]
		if !ok {
			return fmt.Errorf("unknown rlimit %q", l.Type)
		}
		rl := unix.Rlimit{Cur: l.Soft, Max: l.Hard}
		if err := unix.Prlimit(0, res, &rl, nil); err != nil {
			if errors.Is(err, unix.EPERM) {
				return fmt.Errorf("set %s to soft=%d hard=%d: %w (raising a hard limit needs CAP_SYS_RESOURCE)", l.Type, l.Soft, l.Hard, err)
			}
			return fmt.Errorf("set %s: %w", l.Type, err)
		}
	}
	return nil
}

const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// lookPath resolves args[0] in the container's PATH (from process.env) the
// way a shell would, so a missing binary fails create with a clear error.
func lookPath(p *specs.Process) (string, error) {
	name := p.Args[0]
	if strings.Contains(name, "/") {
		if err := checkExecutable(name, p.Cwd); err != nil {
			return "", err
		}
		return name, nil
	}
	pathEnv := defaultPath
	for _, e := range p.Env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			pathEnv = v
		}
	}
	for _, dir := range filepath.SplitList(pathEnv) {
		if dir == "" {
			dir = "."
		}
		cand := filepath.Join(dir, name)
		if checkExecutable(cand, p.Cwd) == nil {
			return cand, nil
		}
	}
	return "", fmt.Errorf("exec: %q: executable file not found in $PATH", name)
}

func checkExecutable(path, cwd string) error {
	if !filepath.IsAbs(path) && cwd != "" {
		path = filepath.Join(cwd, path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("exec: %q: %w", path, errors.Unwrap(err))
	}
	if fi.IsDir() {
		return fmt.Errorf("exec: %q: is a directory", path)
	}
	if fi.Mode()&0o111 == 0 {
		return fmt.Errorf("exec: %q: permission denied", path)
	}
	return nil
}

// setupConsole creates the container's terminal from its own devpts, hands
// the master side to whoever listens on the console socket and makes the
// slave the process's controlling terminal and stdio.
func setupConsole(consoleFd int, p *specs.Process) error {
	master, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open /dev/ptmx: %w", err)
	}
	defer unix.Close(master)
	if err := unix.IoctlSetPointerInt(master, unix.TIOCSPTLCK, 0); err != nil {
		return fmt.Errorf("unlockpt: %w", err)
	}
	ptn, err := unix.IoctlGetInt(master, unix.TIOCGPTN)
	if err != nil {
		return fmt.Errorf("ptsname: %w", err)
	}
	// TIOCGPTPEER opens the slave through the master, with no path lookup a
	// hostile /dev/pts could redirect.
	slave, err := ptyPeer(master)
	if err != nil {
		slave, err = unix.Open("/dev/pts/"+strconv.Itoa(ptn), unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open pty slave: %w", err)
		}
	}
	if p.ConsoleSize != nil {
		ws := &unix.Winsize{Row: uint16(p.ConsoleSize.Height), Col: uint16(p.ConsoleSize.Width)}
		_ = unix.IoctlSetWinsize(master, unix.TIOCSWINSZ, ws)
	}
	_ = unix.Fchown(slave, int(p.User.UID), -1)
	name := "/dev/pts/" + strconv.Itoa(ptn)
	if err := unix.Sendmsg(consoleFd, []byte(name), unix.UnixRights(master), nil, 0); err != nil {
		return fmt.Errorf("send console to console socket: %w", err)
	}
	unix.Close(consoleFd)
	if err := unix.IoctlSetInt(slave, unix.TIOCSCTTY, 0); err != nil {
		return fmt.Errorf("set controlling terminal: %w", err)
	}
	for i := 0; i < 3; i++ {
		if err := unix.Dup3(slave, i, 0); err != nil {
			return fmt.Errorf("dup pty: %w", err)
		}
	}
	unix.Close(slave)
	return nil
}

// ptyPeer opens the slave side of master with TIOCGPTPEER, whose argument
// is the open flags.
func ptyPeer(master int) (int, error) {
	fd, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(master), unix.TIOCGPTPEER, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC)
	if errno != 0 {
		return -1, errno
	}
	return int(fd), nil
}

// ensureHome sets HOME from the container's /etc/passwd (or "/") when the
// process environment lacks it, as runc does. It runs after the root
// switch, so it reads the container's file, never the host's.
func ensureHome(p *specs.Process) {
	for _, e := range p.Env {
		if strings.HasPrefix(e, "HOME=") {
			return
		}
	}
	home := "/"
	if data, err := os.ReadFile("/etc/passwd"); err == nil {
		uid := strconv.FormatUint(uint64(p.User.UID), 10)
		for _, line := range strings.Split(string(data), "\n") {
			f := strings.Split(line, ":")
			if len(f) >= 6 && f[2] == uid && f[5] != "" {
				home = f[5]
				break
			}
		}
	}
	p.Env = append(p.Env, "HOME="+home)
}

// enterLateNamespaces puts the calling thread in new network, IPC and UTS
// namespaces (the flags): the ones a parent thread built in parallel (dir),
// or fresh ones.
func enterLateNamespaces(flags uintptr, dir string) error {
	for _, ns := range []struct {
		flag uintptr
		name string
	}{{unix.CLONE_NEWNET, "net"}, {unix.CLONE_NEWIPC, "ipc"}, {unix.CLONE_NEWUTS, "uts"}} {
		if flags&ns.flag == 0 || dir == "" {
			continue
		}
		fd, err := unix.Open(dir+"/"+ns.name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			continue // a namespace of our own is as good
		}
		err = unix.Setns(fd, int(ns.flag))
		unix.Close(fd)
		if err == nil {
			flags &^= ns.flag
		}
	}
	if flags != 0 {
		if err := unix.Unshare(int(flags)); err != nil {
			return fmt.Errorf("unshare namespaces 0x%x: %w", flags, err)
		}
	}
	return nil
}
