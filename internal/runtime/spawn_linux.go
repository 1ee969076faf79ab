package runtime

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	goruntime "runtime"
	"strconv"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/cgroups"
	"github.com/berth-dev/berth/internal/linux"
	"github.com/berth-dev/berth/internal/timing"
)

// InitArg is the argv[1] that makes berth-runtime act as a container's init
// (or an exec'd process) instead of a command-line tool.
const InitArg = "init"

// Environment variables of the init protocol.
const (
	envInit    = "_BERTH_INIT"    // sync socket descriptor number
	envNsenter = "_BERTH_NSENTER" // read by internal/linux/nsenter
)

// spawnRequest describes one process to start inside (new or existing)
// namespaces.
type spawnRequest struct {
	// cloneFlags are the namespaces to create.
	cloneFlags uintptr
	// unshareFlags are namespaces created by the child's constructor after
	// it joined the namespaces in join (see internal/linux/nsenter).
	unshareFlags uintptr
	// join are namespace files to enter, by type.
	join    map[specs.LinuxNamespaceType]string
	uidMaps []syscall.SysProcIDMap
	gidMaps []syscall.SysProcIDMap
	// extra are descriptors passed to the child from fd 3 up.
	extra                 []*os.File
	stdin, stdout, stderr *os.File
	// cgroup, if set, is where the child is born: the forking thread enters
	// it first (cgroups.Manager.EnterThread), so no process is moved and
	// nothing waits for the kernel's grace period.
	cgroup cgroups.Manager
	// bornInCgroup reports, after spawn, whether cgroup forked the child.
	bornInCgroup bool
	// foreground keeps the child tied to us (for run and exec without
	// --detach); otherwise it starts a session of its own.
	setsid bool
}

// spawn starts the berth-runtime binary as a child in the requested
// namespaces and returns the child and our end of its sync socket.
//
// Namespaces are joined in two ways. Network, IPC, UTS, PID and cgroup
// namespaces are per-thread for setns(2), so we join them on a locked OS
// thread that then forks the child: the child inherits that thread's
// namespaces (for PID, "for children" is exactly what a fork needs). User,
// mount and time namespaces cannot be entered by a multi-threaded process,
// so the child enters those itself in its process entry point, before its
// Go runtime starts (internal/linux/nsenter). The thread that joined
// namespaces is never unlocked, so Go discards it afterwards instead of
// reusing it for other goroutines.
func spawn(req *spawnRequest) (cmd *exec.Cmd, parentSock *os.File, retErr error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	parentSock = os.NewFile(uintptr(fds[0]), "sync-parent")
	childSock := os.NewFile(uintptr(fds[1]), "sync-child")
	defer childSock.Close()
	defer func() {
		if retErr != nil {
			parentSock.Close()
		}
	}()

	exe, err := selfExe()
	if err != nil {
		return nil, nil, err
	}
	mark("spawn: exe copied")
	defer exe.Close()

	extra := append([]*os.File{}, req.extra...)
	extra = append(extra, childSock)
	env := []string{envInit + "=" + strconv.Itoa(3+len(extra)-1), "GOMAXPROCS=1"}
	if timing.On {
		env = append(env, "BERTH_TIMING=1")
	}

	// Order matters: user first (it grants the rights to enter the others).
	inChild, err := openNamespaces(req.join, specs.UserNamespace, specs.MountNamespace, specs.TimeNamespace)
	if err != nil {
		return nil, nil, err
	}
	defer closeAll(inChild)
	var nsenterFds []string
	for _, f := range inChild {
		extra = append(extra, f)
		nsenterFds = append(nsenterFds, strconv.Itoa(3+len(extra)-1))
	}
	if len(nsenterFds) > 0 {
		env = append(env, envNsenter+"="+strings.Join(nsenterFds, ","))
	}
	if req.unshareFlags != 0 {
		env = append(env, "_BERTH_UNSHARE="+strconv.FormatUint(uint64(req.unshareFlags), 10))
	}
	perThread, err := openNamespaces(req.join, specs.CgroupNamespace, specs.IPCNamespace, specs.UTSNamespace, specs.NetworkNamespace, specs.PIDNamespace)
	if err != nil {
		return nil, nil, err
	}
	defer closeAll(perThread)

	cmd = &exec.Cmd{
		Path:       "/proc/self/fd/" + strconv.Itoa(int(exe.Fd())),
		Args:       []string{"berth-runtime", InitArg},
		Env:        env,
		Stdin:      req.stdin,
		Stdout:     req.stdout,
		Stderr:     req.stderr,
		ExtraFiles: extra,
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags:                 req.cloneFlags,
			UidMappings:                req.uidMaps,
			GidMappings:                req.gidMaps,
			GidMappingsEnableSetgroups: true,
			Setsid:                     req.setsid,
		},
	}
	if req.uidMaps != nil {
		// In a new user namespace our host uid 0 is unmapped: become the
		// namespace's root (once the maps are written, before execve), or
		// execve would drop every capability the setup needs.
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: rootID(req.uidMaps), Gid: rootID(req.gidMaps)}
	}
	// os/exec would otherwise start copying goroutines for nil streams.
	if cmd.Stdin == nil {
		cmd.Stdin = devNull()
	}
	if cmd.Stdout == nil {
		cmd.Stdout = devNull()
	}
	if cmd.Stderr == nil {
		cmd.Stderr = devNull()
	}

	if len(perThread) == 0 && req.cgroup == nil {
		if err := startCmd(cmd, exe); err != nil {
			return nil, nil, fmt.Errorf("start container process: %w", err)
		}
		return cmd, parentSock, nil
	}
	errc := make(chan error, 1)
	fork := func(cgroupFD int) {
		if cgroupFD >= 0 {
			cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, cgroupFD
		}
		for _, f := range perThread {
			if err := unix.Setns(int(f.Fd()), 0); err != nil {
				errc <- fmt.Errorf("join namespace %s: %w", f.Name(), err)
				return
			}
		}
		if err := startCmd(cmd, exe); err != nil {
			errc <- fmt.Errorf("start container process: %w", err)
			return
		}
		errc <- nil
	}
	req.bornInCgroup = false
	switch {
	case req.cgroup != nil && len(perThread) == 0:
		// Fork from this thread, inside the cgroup, then step back out.
		goruntime.LockOSThread()
		leave, fd, err := req.cgroup.EnterThread()
		if err == nil {
			req.bornInCgroup = true
			fork(fd)
			if fd >= 0 {
				unix.Close(fd)
			}
			forkErr := <-errc
			lerr := leave()
			goruntime.UnlockOSThread()
			if lerr != nil && forkErr == nil {
				_ = cmd.Process.Kill()
				_, _ = cmd.Process.Wait()
			}
			if lerr != nil {
				return nil, nil, lerr
			}
			errc <- forkErr
			break
		}
		goruntime.UnlockOSThread()
		onDisposableThread(func() { fork(-1) }) // the caller moves the child in
	case req.cgroup != nil:
		// Joining namespaces too: a thread that is discarded afterwards
		// does both and never has to step back out.
		onDisposableThread(func() {
			_, fd, err := req.cgroup.EnterThread()
			if err != nil {
				fork(-1)
				return
			}
			req.bornInCgroup = true
			if fd >= 0 {
				defer unix.Close(fd)
			}
			fork(fd)
		})
	default:
		onDisposableThread(func() { fork(-1) })
	}
	if err := <-errc; err != nil {
		return nil, nil, err
	}
	return cmd, parentSock, nil
}

// onDisposableThread runs fn in a new goroutine on an OS thread of its own
// that Go throws away afterwards, for work that changes per-thread state
// the rest of the process must not inherit (namespaces, cgroup membership).
// The goroutine locks its thread and never unlocks it, so the runtime
// terminates the thread when fn returns — except the process's main thread,
// which Go never terminates but keeps, wedged, with whatever state it was
// given. So if the goroutine lands on the main thread, it hands fn to yet
// another goroutine, which cannot be scheduled there while the main thread
// stays locked, and then releases the main thread untouched.
func onDisposableThread(fn func()) {
	go func() {
		goruntime.LockOSThread()
		if unix.Gettid() != unix.Getpid() {
			fn() // deliberately never unlocked
			return
		}
		done := make(chan struct{})
		go func() {
			goruntime.LockOSThread()
			fn() // deliberately never unlocked
			close(done)
		}()
		<-done
		goruntime.UnlockOSThread()
	}()
}

// openNamespaces opens the namespace files in join for the given types, in
// that order.
func openNamespaces(join map[specs.LinuxNamespaceType]string, types ...specs.LinuxNamespaceType) ([]*os.File, error) {
	var out []*os.File
	for _, t := range types {
		p, ok := join[t]
		if !ok {
			continue
		}
		f, err := os.Open(p)
		if err != nil {
			closeAll(out)
			return nil, fmt.Errorf("open %s namespace: %w", t, err)
		}
		out = append(out, f)
	}
	return out, nil
}

func closeAll(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

// startCmd starts cmd, whose Path is exe through /proc/self/fd. If the
// cached read-only binary went away under us (another berth-runtime
// version's clean-up unmounted it between our open and the exec), it
// retries once from a sealed memfd copy.
func startCmd(cmd *exec.Cmd, exe *os.File) error {
	err := cmd.Start()
	if err == nil || !(errors.Is(err, unix.EACCES) || errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOEXEC)) {
		return err
	}
	mem, merr := memfdExe()
	if merr != nil {
		return err
	}
	defer mem.Close()
	retry := &exec.Cmd{
		Path:        "/proc/self/fd/" + strconv.Itoa(int(mem.Fd())),
		Args:        cmd.Args,
		Env:         cmd.Env,
		Stdin:       cmd.Stdin,
		Stdout:      cmd.Stdout,
		Stderr:      cmd.Stderr,
		ExtraFiles:  cmd.ExtraFiles,
		SysProcAttr: cmd.SysProcAttr,
	}
	if err := retry.Start(); err != nil {
		return err
	}
	*cmd = *retry //nolint:govet // a fresh, just-started command replaces the failed one
	return nil
}

var devNullFile *os.File

func devNull() *os.File {
	if devNullFile == nil {
		devNullFile, _ = os.OpenFile(os.DevNull, os.O_RDWR, 0)
	}
	return devNullFile
}

// namespaceSetup splits the spec's namespaces into clone flags and paths to
// join.
func namespaceSetup(namespaces []specs.LinuxNamespace) (flags uintptr, join map[specs.LinuxNamespaceType]string, err error) {
	join = map[specs.LinuxNamespaceType]string{}
	seen := map[specs.LinuxNamespaceType]bool{}
	for _, ns := range namespaces {
		f, err := linux.NamespaceFlag(ns.Type)
		if err != nil {
			return 0, nil, err
		}
		if seen[ns.Type] {
			return 0, nil, fmt.Errorf("namespace %s listed twice", ns.Type)
		}
		seen[ns.Type] = true
		if ns.Path != "" {
			if err := checkNamespacePath(ns); err != nil {
				return 0, nil, err
			}
			join[ns.Type] = ns.Path
			continue
		}
		flags |= f
	}
	return flags, join, nil
}

// checkNamespacePath verifies that a path given for a namespace really is a
// namespace of that type, so a typo cannot silently join the wrong one.
func checkNamespacePath(ns specs.LinuxNamespace) error {
	want, _ := linux.NamespaceFlag(ns.Type)
	f, err := os.Open(ns.Path)
	if err != nil {
		return fmt.Errorf("namespace %s path: %w", ns.Type, err)
	}
	defer f.Close()
	got, err := unix.IoctlRetInt(int(f.Fd()), unix.NS_GET_NSTYPE)
	if err != nil {
		return fmt.Errorf("namespace %s path %s is not a namespace: %w", ns.Type, ns.Path, err)
	}
	if uintptr(got) != want {
		return fmt.Errorf("namespace path %s is not a %s namespace", ns.Path, ns.Type)
	}
	return nil
}

// rootID is 0 if the mapping covers it, else the first mapped id.
func rootID(m []syscall.SysProcIDMap) uint32 {
	for _, e := range m {
		if e.ContainerID == 0 {
			return 0
		}
	}
	if len(m) > 0 {
		return uint32(m[0].ContainerID)
	}
	return 0
}

func idMaps(m []specs.LinuxIDMapping) []syscall.SysProcIDMap {
	out := make([]syscall.SysProcIDMap, 0, len(m))
	for _, e := range m {
		out = append(out, syscall.SysProcIDMap{ContainerID: int(e.ContainerID), HostID: int(e.HostID), Size: int(e.Size)})
	}
	return out
}
