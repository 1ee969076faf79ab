package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Start lets a created container's init exec the workload, then runs the
// poststart hooks. It returns once execve has succeeded in the container
// (or with the reason it failed).
func (r *Runtime) Start(id string) error {
	c, err := r.Load(id)
	if err != nil {
		return err
	}
	return c.Start()
}

// Start is Runtime.Start on an already loaded container.
func (c *Container) Start() error {
	mark("start")
	defer mark("start: done")
	id := c.ID
	switch st := c.Status(); st {
	case StatusCreated:
	case StatusStopped:
		return fmt.Errorf("cannot start a container that has stopped: %w", errdefs.ErrConflict)
	default:
		return fmt.Errorf("cannot start an already %s container: %w", st, errdefs.ErrConflict)
	}
	msg, err := c.signalStart()
	if err != nil {
		return fmt.Errorf("start %s: %w", id, err)
	}
	// With the socket gone the container reads as running; nothing else
	// needs to be recorded.
	_ = os.Remove(filepath.Join(c.dir, startSock))
	if len(msg) > 0 {
		return fmt.Errorf("start %s: %s", id, msg)
	}
	c.poststart()
	return nil
}

// Started finishes a container created with AutoStart (already running):
// the poststart hooks.
func (c *Created) Started() { c.poststart() }

func (c *Container) poststart() {
	if !c.HasPoststart {
		return
	}
	s, err := c.Spec()
	if err == nil {
		// The state as of the start, like runc: a workload that is quick to
		// exit must not make the hooks see a stopped container.
		st := c.State()
		st.Status, st.Pid = StatusRunning, c.Pid
		err = runHooks("poststart", s.Hooks.Poststart, &st.State)
	}
	if err != nil {
		// The spec asks for a warning only; the container keeps running.
		fmt.Fprintf(os.Stderr, "warning: %v\n", err)
	}
}

// signalStart connects to the init's start socket, tells it to go and
// returns what it reports. The init's end is close-on-exec, so EOF without a
// message means the workload is running. Plain syscalls: a blocking socket
// needs none of the Go network poller's setup.
func (c *Container) signalStart() ([]byte, error) {
	d, err := unix.Open(c.dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(d)
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	addr := &unix.SockaddrUnix{Name: "/proc/self/fd/" + strconv.Itoa(d) + "/" + startSock}
	if err := unix.Connect(fd, addr); err != nil {
		return nil, fmt.Errorf("container is not waiting to start: %w", err)
	}
	if _, err := unix.Write(fd, []byte{'s'}); err != nil {
		return nil, err
	}
	var msg []byte
	buf := make([]byte, 4096)
	for {
		n, err := unix.Read(fd, buf)
		if n > 0 {
			msg = append(msg, buf[:n]...)
		}
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if n <= 0 || err != nil {
			if err != nil && !errors.Is(err, unix.ECONNRESET) {
				return msg, err
			}
			return msg, nil
		}
	}
}

// Kill sends sig to the container's init, or to every process in its cgroup
// with all.
func (r *Runtime) Kill(id string, sig unix.Signal, all bool) error {
	c, err := r.Load(id)
	if err != nil {
		return err
	}
	if !c.Alive() {
		return fmt.Errorf("container %s is not running: %w", id, errdefs.ErrNotRunning)
	}
	if !all {
		return c.signalInit(sig)
	}
	return c.signalAll(sig)
}

// signalAll signals every process in the container's cgroup. The cgroup is
// frozen meanwhile (for SIGKILL) so no process can fork a survivor between
// listing and signalling.
func (c *Container) signalAll(sig unix.Signal) error {
	cg, err := c.cgroup()
	if err != nil {
		return err
	}
	// Never freeze or signal ourselves: a thread of ours may still be in
	// the cgroup for an instant after forking an init into it.
	self := os.Getpid()
	pids, err := cg.Pids()
	if err != nil {
		return err
	}
	frozen := false
	if sig == unix.SIGKILL && !slices.Contains(pids, self) {
		if err := cg.Freeze(); err == nil {
			frozen = true
			if pids, err = cg.Pids(); err != nil {
				_ = cg.Thaw()
				return err
			}
		}
	}
	for _, pid := range pids {
		if pid != self {
			_ = unix.Kill(pid, sig)
		}
	}
	if frozen {
		return cg.Thaw()
	}
	return nil
}

// Delete removes a stopped container (or, with force, kills it first):
// processes, cgroup, state, then the poststop hooks.
func (r *Runtime) Delete(id string, force bool) error {
	c, err := r.Load(id)
	if err != nil {
		if errdefs.IsNotFound(err) && force {
			// A create killed before it wrote state leaves only a directory.
			_ = os.RemoveAll(r.dir(id))
		}
		return err
	}
	return c.Delete(force)
}

// Delete is Runtime.Delete on an already loaded container.
func (c *Container) Delete(force bool) error {
	mark("delete")
	defer mark("delete: done")
	id := c.ID
	switch st := c.Status(); st {
	case StatusStopped:
	case StatusCreated:
		// runc deletes created containers without --force.
		if err := c.killAndWait(); err != nil {
			return err
		}
	default:
		if !force {
			return fmt.Errorf("cannot delete container %s that is not stopped: %s: %w", id, st, errdefs.ErrConflict)
		}
		if err := c.killAndWait(); err != nil {
			return err
		}
	}
	return c.destroy()
}

func (c *Container) killAndWait() error {
	if cg, err := c.cgroup(); err == nil {
		if frozen, _ := cg.Frozen(); frozen {
			_ = cg.Thaw()
		}
	}
	fd, err := unix.PidfdOpen(c.Pid, 0)
	if err == nil {
		defer unix.Close(fd)
	}
	_ = c.signalAll(unix.SIGKILL)
	_ = c.signalInit(unix.SIGKILL)
	if fd >= 0 && err == nil {
		// A pidfd becomes readable when the process exits, also for
		// processes that are not our children.
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		_, _ = unix.Poll(fds, 10000)
	}
	deadline := time.Now().Add(10 * time.Second)
	for c.Alive() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if c.Alive() {
		return fmt.Errorf("container %s: init did not exit after SIGKILL", c.ID)
	}
	return nil
}

func (c *Container) destroy() error {
	cg, err := c.cgroup()
	if err == nil {
		// Leftover processes (a container without its own PID namespace)
		// die with the container.
		if pids, err := cg.Pids(); err == nil && len(pids) > 0 {
			_ = c.signalAll(unix.SIGKILL)
		}
		var derr error
		for i := 0; i < 100; i++ {
			if derr = cg.Destroy(); derr == nil {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if derr != nil {
			return fmt.Errorf("remove cgroup: %w", derr)
		}
	}
	if err := removeStateDir(c.dir); err != nil {
		return err
	}
	if c.HasPoststop {
		s, err := c.Spec()
		if err != nil {
			return err
		}
		st := c.State()
		st.Status = StatusStopped
		if err := runHooks("poststop", s.Hooks.Poststop, &st.State); err != nil {
			fmt.Fprintf(os.Stderr, "warning: %v\n", err)
		}
	}
	return nil
}

// Pause freezes every process of the container.
func (r *Runtime) Pause(id string) error {
	c, err := r.Load(id)
	if err != nil {
		return err
	}
	if st := c.Status(); st != StatusRunning && st != StatusCreated {
		return fmt.Errorf("cannot pause a %s container: %w", st, errdefs.ErrConflict)
	}
	cg, err := c.cgroup()
	if err != nil {
		return err
	}
	return cg.Freeze()
}

// Resume thaws a paused container.
func (r *Runtime) Resume(id string) error {
	c, err := r.Load(id)
	if err != nil {
		return err
	}
	if st := c.Status(); st != StatusPaused {
		return fmt.Errorf("cannot resume a %s container: %w", st, errdefs.ErrConflict)
	}
	cg, err := c.cgroup()
	if err != nil {
		return err
	}
	return cg.Thaw()
}

// removeStateDir removes a container's state directory: the files the
// runtime puts there by name, then the directory, without the listing
// os.RemoveAll starts with. Anything else found there (a debris file of an
// interrupted save) falls back to os.RemoveAll.
func removeStateDir(dir string) error {
	for _, name := range []string{stateFile, startSock, stateTmp} {
		if err := unix.Unlink(filepath.Join(dir, name)); err != nil && err != unix.ENOENT {
			return os.RemoveAll(dir)
		}
	}
	if err := unix.Rmdir(dir); err != nil && err != unix.ENOENT {
		return os.RemoveAll(dir)
	}
	return nil
}
