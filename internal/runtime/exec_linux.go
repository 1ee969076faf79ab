package runtime

import (
	"fmt"
	"os"
	"os/exec"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/cgroups"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/linux"
)

// ExecOptions are exec's command-line options.
type ExecOptions struct {
	Process       *specs.Process
	PidFile       string
	ConsoleSocket string
	// Console, when set, is used instead of ConsoleSocket (exec -t).
	Console     *os.File
	PreserveFds int
	// Detach releases the process instead of keeping it as our child.
	Detach bool
}

// Exec starts another process in a running (or created) container. The
// returned command is our child unless Detach was set.
func (r *Runtime) Exec(id string, o *ExecOptions) (_ *exec.Cmd, retErr error) {
	cgroups.Prewarm()
	c, err := r.Load(id)
	if err != nil {
		return nil, err
	}
	switch st := c.Status(); st {
	case StatusRunning, StatusCreated:
	case StatusPaused:
		return nil, fmt.Errorf("cannot exec in a paused container %s: %w", id, errdefs.ErrConflict)
	default:
		return nil, fmt.Errorf("cannot exec in a %s container %s: %w", st, id, errdefs.ErrNotRunning)
	}
	p := o.Process
	if p == nil || len(p.Args) == 0 {
		return nil, fmt.Errorf("exec: args must not be empty: %w", errdefs.ErrInvalidArgument)
	}
	if p.Terminal && o.ConsoleSocket == "" && o.Console == nil {
		return nil, fmt.Errorf("exec: terminal requested but no --console-socket was given: %w", errdefs.ErrInvalidArgument)
	}

	join := map[specs.LinuxNamespaceType]string{}
	for t, path := range c.NamespacePaths {
		join[t] = path
	}
	// The container's namespaces may not be ours to re-enter if they are
	// the host's (a container sharing the host network joins nothing).
	for t := range join {
		same, err := sameNamespace(c.Pid, t)
		if err == nil && same {
			delete(join, t)
		}
	}
	req := &spawnRequest{
		join:   join,
		setsid: p.Terminal,
		stdin:  os.Stdin,
		stdout: os.Stdout,
		stderr: os.Stderr,
	}
	for i := 0; i < o.PreserveFds; i++ {
		req.extra = append(req.extra, os.NewFile(uintptr(3+i), "preserved"))
	}
	spec, err := c.Spec()
	if err != nil {
		return nil, err
	}
	cfg := &initConfig{
		ID:         id,
		Spec:       spec,
		Exec:       true,
		Process:    p,
		ConsoleFd:  -1,
		ListenFd:   -1,
		PreserveFd: o.PreserveFds,
	}
	closeConsole, err := req.addConsole(cfg, o.Console, o.ConsoleSocket)
	if err != nil {
		return nil, err
	}
	defer closeConsole()
	cmd, sock, err := spawn(req)
	if err != nil {
		return nil, err
	}
	defer sock.Close()
	defer func() {
		if retErr != nil {
			_ = cmd.Process.Kill()
			_, _ = cmd.Process.Wait()
		}
	}()
	cg, err := c.cgroup()
	if err != nil {
		return nil, err
	}
	if err := cg.Apply(cmd.Process.Pid); err != nil {
		return nil, fmt.Errorf("join container cgroup: %w", err)
	}
	if err := writeMsg(sock, &syncMsg{Type: msgConfig, Config: cfg}); err != nil {
		return nil, fmt.Errorf("send config to exec process: %w", err)
	}
	if _, err := expect(sock, msgReady); err != nil {
		return nil, err
	}
	if err := awaitExec(sock); err != nil {
		return nil, err
	}
	if o.PidFile != "" {
		if err := writePidFile(o.PidFile, cmd.Process.Pid); err != nil {
			return nil, err
		}
	}
	if o.Detach {
		_ = cmd.Process.Release()
	}
	return cmd, nil
}

func sameNamespace(pid int, t specs.LinuxNamespaceType) (bool, error) {
	name := linux.NamespaceProcName(t)
	a, err := os.Stat(fmt.Sprintf("/proc/%d/ns/%s", pid, name))
	if err != nil {
		return false, err
	}
	b, err := os.Stat("/proc/self/ns/" + name)
	if err != nil {
		return false, err
	}
	return os.SameFile(a, b), nil
}

// runExec is the exec'd process's side, after the nsenter entry point and
// the parent's thread have put it in every namespace of the container.
func (cfg *initConfig) runExec(sock *os.File) error {
	if cfg.ConsoleFd >= 0 {
		if err := setupConsole(cfg.ConsoleFd, cfg.Process); err != nil {
			return err
		}
	}
	if err := setRlimits(cfg.Process.Rlimits); err != nil {
		return err
	}
	ensureHome(cfg.Process)
	path, err := lookPath(cfg.Process)
	if err != nil {
		return err
	}
	if err := writeMsg(sock, &syncMsg{Type: msgReady}); err != nil {
		return err
	}
	return execProcess(cfg.Process, path, cfg.PreserveFd, cfg.Spec.Linux)
}
