package monitor

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Names of the monitor's files in the bundle directory.
const (
	StateFile   = "monitor.json"
	AttachSock  = "attach.sock"
	ControlSock = "control.sock"
	consoleSock = "console.sock"
	runtimeLog  = "runtime.log"
)

type monitor struct {
	o      Options
	r      *reaper
	rt     *ociRuntime
	log    *jsonLog
	hub    *hub
	health *HealthConfig

	mu     sync.Mutex
	st     State
	master *os.File // the pty master of the running instance (resize)

	unmounted bool      // the rootfs, after the final exit
	gcTrim    sync.Once // trimAfterEachGC armed (once: it re-arms itself)
	// exitRecorded is closed (and replaced) each time an exit is recorded
	// in monitor.json: control "wait" requests block on it.
	exitRecorded chan struct{}
	exitLock     *os.File // Options.ExitCommandLock, opened at start

	stopped chan struct{} // closed by a user stop
	stopOne sync.Once
}

// Run is berth-monitor: it creates and starts the container, reports on
// ready (the fd 3 pipe; may be nil), and supervises the container until it
// exits for good. It returns when the monitor's work is done; an error
// means the container could not be started the first time (already
// reported on ready).
func Run(o Options, ready *os.File) (retErr error) {
	mark("start")
	m := &monitor{o: o, stopped: make(chan struct{}), hub: newHub(o.TTY), exitRecorded: make(chan struct{})}
	m.st = State{MonitorPid: os.Getpid(), Status: "created"}
	report := func(line string) {
		if ready != nil {
			_, _ = io.WriteString(ready, line)
		}
	}
	defer func() {
		if retErr != nil {
			report("error " + oneLine(retErr.Error()) + "\n")
		}
		if ready != nil {
			ready.Close()
		}
	}()
	// Runs after the deferred socket removals below: the exit command
	// must find the container exited and its monitor's files gone.
	finalExit := false
	defer func() {
		if finalExit {
			m.unmount() // again: the exits after a restart's back-off come here directly
			m.runExitCommand()
		}
	}()

	// Sockets are bound by names relative to the bundle: sun_path holds 108
	// bytes and state directories can be deeper than that.
	if err := os.Chdir(o.Bundle); err != nil {
		return wrap("monitor", err)
	}
	// Orphans of the container (its init, once `runtime create` is gone)
	// become our children, so we can wait4 them and learn exit codes.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return wrap("monitor: set child subreaper", err)
	}
	m.r = newReaper()
	m.openExitLock()
	m.rt = &ociRuntime{path: o.Runtime, root: o.RuntimeRoot, id: o.ID, logPath: filepath.Join(o.Bundle, runtimeLog), r: m.r}
	var err error
	if o.HealthFile != "" {
		if m.health, err = readHealthConfig(o.HealthFile); err != nil {
			return err
		}
	}
	if m.log, err = openJSONLog(o.LogPath, o.LogMaxSize, o.LogMaxFile); err != nil {
		return err
	}
	defer m.log.close()
	attachL, err := listenUnix(AttachSock)
	if err != nil {
		return err
	}
	var controlL *os.File
	socketsClosed := false
	closeSockets := func() { // at the final exit, or when Run returns
		if socketsClosed {
			return
		}
		socketsClosed = true
		attachL.Close()
		os.Remove(AttachSock)
		if controlL != nil {
			controlL.Close()
			os.Remove(ControlSock)
		}
	}
	defer closeSockets()
	controlL, err = listenUnix(ControlSock)
	if err != nil {
		return err
	}
	go m.acceptLoop(attachL, m.hub.serve)
	go m.acceptLoop(controlL, m.control)

	mark("sockets listen")
	if err := waitGate(o.StartGate); err != nil {
		return err
	}
	inst, err := m.startInstance(o.AttachWait, report)
	if err != nil {
		m.update(func(s *State) {
			s.Status, s.Error, s.ExitCode, s.FinishedAt = "exited", err.Error(), startErrorCode(err.Error()), time.Now().UTC()
		})
		return err
	}
	report("ok " + strconv.Itoa(inst.pid) + "\n")
	ready.Close()
	ready = nil
	var backoff time.Duration
	for {
		ex := m.waitInstance(inst)
		st := m.snapshot()
		// One write of monitor.json per exit, with the status decided:
		// a reader never sees the exit code with a stale "running".
		status := "restarting"
		if !o.Restart.shouldRestart(ex.code, st.RestartCount, st.UserStopped) {
			status = "exited"
		}
		// A restart reuses the runtime's container id, so its state goes
		// before the restart is recorded. The final exit is recorded as
		// soon as the rootfs is unmounted, while `runtime delete` (a
		// process of its own, mostly exec and exit) still runs: a waiting
		// `run` learns the exit code that much sooner, and `rm` removes
		// the snapshot meanwhile (it waits for the runtime's state to go
		// before it removes the bundle; see the package documentation).
		var deleted func() error
		if status == "restarting" {
			m.deleteContainer(&ex)
		} else {
			mark("runtime delete started")
			deleted = m.rt.startDelete()
			if err := m.unmount(); ex.err == "" {
				ex.err = err
			}
		}
		m.update(func(s *State) {
			s.Pid, s.ExitCode, s.FinishedAt, s.OOMKilled, s.Status = 0, ex.code, ex.finished, ex.oomKilled, status
			if ex.err != "" {
				s.Error = ex.err
			}
		})
		m.mu.Lock()
		close(m.exitRecorded)
		m.exitRecorded = make(chan struct{})
		m.mu.Unlock()
		mark("exit recorded")
		// Attach clients learn of the exit when their socket closes; the
		// state they then read is already final.
		m.hub.end()
		if status == "exited" {
			// Nothing is left to attach to or ask: the sockets go now,
			// so the bundle holds nothing of ours once delete is done.
			closeSockets()
			if err := deleted(); err != nil {
				m.update(func(s *State) { s.Error = "delete: " + err.Error() })
			}
			mark("deleted")
			finalExit = true
			return nil
		}
		backoff = nextBackoff(backoff, ex.finished.Sub(st.StartedAt))
		select {
		case <-m.stopped:
			m.update(func(s *State) { s.Status = "exited" })
			finalExit = true
			return nil
		case <-time.After(backoff):
		}
		m.update(func(s *State) { s.RestartCount++ })
		for {
			inst, err = m.startInstance(false, nil)
			if err == nil {
				break
			}
			// A restart that cannot start counts as a failed run, as in
			// Docker: the policy decides again, with the back-off.
			code := startErrorCode(err.Error())
			m.update(func(s *State) {
				s.Error, s.ExitCode, s.FinishedAt, s.Status = err.Error(), code, time.Now().UTC(), "exited"
			})
			st := m.snapshot()
			if !o.Restart.shouldRestart(code, st.RestartCount, st.UserStopped) {
				finalExit = true
				return nil
			}
			backoff = nextBackoff(backoff, 0)
			m.update(func(s *State) { s.Status = "restarting" })
			select {
			case <-m.stopped:
				m.update(func(s *State) { s.Status = "exited" })
				finalExit = true
				return nil
			case <-time.After(backoff):
			}
			m.update(func(s *State) { s.RestartCount++ })
		}
	}
}

// ErrStartAborted is Run's error when the engine closed the start gate
// without releasing it: nothing was started, nothing recorded.
var ErrStartAborted = errors.New("monitor: start aborted by the engine")

// waitGate blocks until the engine releases the start gate (one byte) and
// closes it. No gate: nothing to wait for.
func waitGate(gate *os.File) error {
	if gate == nil {
		return nil
	}
	defer gate.Close()
	var b [1]byte
	n, _ := gate.Read(b[:])
	mark("start gate released")
	if n != 1 {
		return ErrStartAborted
	}
	return nil
}

// trimDelay is how long a container runs before its monitor trims its
// memory (see waitInstance).
const trimDelay = 100 * time.Millisecond

// trim returns start-up's memory to the kernel and drops the mappings of
// our code (see trimResident).
func (m *monitor) trim() {
	debug.FreeOSMemory()
	trimResident()
	m.gcTrim.Do(trimAfterEachGC) // it re-arms itself
}

// instance is one run of the container (the first, or a restart).
type instance struct {
	pid       int
	exit      <-chan unix.WaitStatus
	ioDone    chan struct{}
	oom       *oomCounter
	oomBefore int64
	stopProbe chan struct{}
	probeDone chan struct{}
}

// startInstance creates and starts the container with fresh stdio.
func (m *monitor) startInstance(attachWait bool, report func(string)) (inst *instance, retErr error) {
	m.r.forget()
	var (
		childIn, childOut, childErr *os.File // the container's ends
		stdin, stdout, stderr       *os.File // ours
		consoleL                    *os.File
		err                         error
	)
	closeAll := func(fs ...*os.File) {
		for _, f := range fs {
			if f != nil {
				f.Close()
			}
		}
	}
	defer func() {
		closeAll(childIn, childOut, childErr, consoleL)
		if retErr != nil {
			closeAll(stdin, stdout, stderr)
			_ = m.rt.delete()
		}
	}()
	consolePath := ""
	if m.o.TTY {
		if consoleL, err = listenUnix(consoleSock); err != nil {
			return nil, err
		}
		defer os.Remove(consoleSock)
		consolePath = filepath.Join(m.o.Bundle, consoleSock)
		if len(consolePath) >= 100 {
			consolePath = consoleSock // the runtime runs in our working directory
		}
	} else {
		if stdout, childOut, err = os.Pipe(); err != nil {
			return nil, wrap("monitor", err)
		}
		if stderr, childErr, err = os.Pipe(); err != nil {
			return nil, wrap("monitor", err)
		}
		if m.o.Stdin {
			if childIn, stdin, err = os.Pipe(); err != nil {
				return nil, wrap("monitor", err)
			}
		}
	}
	// Without --attach-wait nothing has to happen between create and
	// start, so one `runtime run --detach` replaces two runtime processes
	// (runc's command line; each costs an exec of the runtime). The
	// workload may then exit before we watch it: it is our child (we are
	// the subreaper), so its status waits for wait4 (see reaper.watch).
	started := !attachWait
	var pid int
	if started {
		mark("runtime run --detach")
		pid, err = m.rt.runDetached(m.o.Bundle, consolePath, childIn, childOut, childErr)
	} else {
		mark("runtime create")
		pid, err = m.rt.create(m.o.Bundle, consolePath, childIn, childOut, childErr)
	}
	if err != nil {
		return nil, err
	}
	mark("created")
	inst = &instance{pid: pid, exit: m.r.watch(pid), ioDone: make(chan struct{})}
	if m.o.TTY {
		_ = consoleL.SetReadDeadline(time.Now().Add(10 * time.Second))
		conn, err := accept(consoleL)
		if err != nil {
			return nil, wrap("console socket", err)
		}
		stdout, err = recvFd(conn)
		conn.Close()
		if err != nil {
			return nil, err
		}
		if m.o.Stdin {
			stdin = stdout
		}
	}
	closeAll(childIn, childOut, childErr)
	childIn, childOut, childErr = nil, nil, nil

	inst.oom = newOOMCounter(pid)
	inst.oomBefore = inst.oom.count()
	if started && inst.oomBefore > 0 {
		// The runtime made the cgroup for this run, so its count started
		// at 0; anything above is this workload's own OOM kill.
		inst.oomBefore = 0
	}
	m.hub.begin(stdin, m.o.TTY)
	m.startCopiers(inst, stdout, stderr)
	stdout, stderr, stdin = nil, nil, nil

	if attachWait {
		report("attach\n")
		m.hub.waitFirst(AttachWaitTimeout)
	}
	if !started {
		mark("runtime start")
		if err := m.rt.start(); err != nil {
			m.hub.end()
			return nil, err
		}
	}
	mark("started")
	now := time.Now().UTC()
	m.update(func(s *State) {
		s.Pid, s.Status, s.StartedAt, s.FinishedAt, s.ExitCode, s.OOMKilled, s.Error = pid, "running", now, time.Time{}, 0, false, ""
		if m.health != nil {
			if s.Health == nil {
				s.Health = &Health{}
			}
			s.Health.Status, s.Health.FailingStreak = HealthStarting, 0
		}
	})
	if m.health != nil {
		inst.stopProbe, inst.probeDone = make(chan struct{}), make(chan struct{})
		go m.probeLoop(inst, now)
	}
	return inst, nil
}

// startCopiers pumps the instance's output into the log and the clients;
// ioDone closes when every stream reached EOF (the last pump closes it: no
// goroutine just to wait for the others).
func (m *monitor) startCopiers(inst *instance, stdout, stderr *os.File) {
	var left atomic.Int32
	pump := func(f *os.File, stream byte, name string) {
		go func() {
			copyOutput(f, stream, &lineSplitter{stream: name, log: m.log}, m.hub)
			if !m.o.TTY {
				f.Close()
			}
			if left.Add(-1) == 0 {
				close(inst.ioDone)
			}
		}()
	}
	if m.o.TTY {
		m.mu.Lock()
		m.master = stdout
		m.mu.Unlock()
		left.Store(1)
		pump(stdout, streamStdout, "stdout")
	} else {
		left.Store(2)
		pump(stdout, streamStdout, "stdout")
		pump(stderr, streamStderr, "stderr")
	}
}

// drainTimeout bounds the wait for the last output after the init exited:
// a process that escaped the container's pid namespace can hold the pipes.
const drainTimeout = 5 * time.Second

// exitInfo is what waitInstance learned about one exit.
type exitInfo struct {
	code      int
	finished  time.Time
	oomKilled bool
	err       string // cleanup failure, kept in State.Error
}

// waitInstance waits for the init to exit and for its output to drain.
// The caller deletes the runtime's container or unmounts the rootfs,
// records the exit and then ends the attach clients.
func (m *monitor) waitInstance(inst *instance) exitInfo {
	// The trim waits until the container has run a moment: the collection
	// and the trim take a millisecond or two of our single P, and a
	// short-lived workload (run --rm ... true) would exit meanwhile, wait
	// for them, then fault the dropped code back in to handle its exit.
	var ws unix.WaitStatus
	t := time.NewTimer(trimDelay)
	select {
	case ws = <-inst.exit:
		t.Stop()
	case <-t.C:
		m.trim()
		ws = <-inst.exit
	}
	mark("init exited")
	ex := exitInfo{finished: time.Now().UTC(), code: exitCode(ws)}
	if inst.stopProbe != nil {
		close(inst.stopProbe)
	}
	if inst.oomBefore >= 0 {
		ex.oomKilled = inst.oom.count() > inst.oomBefore
	}
	select {
	case <-inst.ioDone:
	case <-time.After(drainTimeout):
	}
	m.mu.Lock()
	if m.master != nil {
		m.master.Close()
		m.master = nil
	}
	m.mu.Unlock()
	if inst.probeDone != nil {
		<-inst.probeDone
	}
	mark("output drained")
	return ex
}

// deleteContainer runs `runtime delete`, keeping a failure in ex.err. The
// rootfs mount is independent of it: ours is in the host's namespace, the
// container's copy went with its mount namespace or goes with its last
// process, which delete kills.
func (m *monitor) deleteContainer(ex *exitInfo) {
	mark("runtime delete")
	if err := m.rt.delete(); err != nil && ex.err == "" {
		ex.err = "delete: " + err.Error()
	}
	mark("deleted")
}

// unmount releases the rootfs after the final exit (a restart reuses the
// mount the engine made). Unmounting what is no longer mounted is a no-op.
func (m *monitor) unmount() string {
	if m.o.Rootfs == "" || m.unmounted {
		return ""
	}
	m.unmounted = true
	defer mark("rootfs unmounted")
	if err := unmountRootfs(m.o.Rootfs); err != nil {
		return err.Error()
	}
	return ""
}

func (m *monitor) acceptLoop(l *os.File, handle func(*os.File)) {
	for {
		c, err := accept(l)
		if err != nil {
			return
		}
		handle(c)
	}
}

// control answers one control.sock request: one JSON object, complete when
// it parses (a trailing newline or a half-close is not required).
func (m *monitor) control(c *os.File) {
	go func() {
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		req, err := readRequest(c)
		if err != nil {
			writeReply(c, "bad request: "+err.Error())
			return
		}
		switch req.Op {
		case "state":
			s := m.snapshot()
			_, _ = c.Write(append(appendState(nil, &s), '\n'))
		case "wait":
			// Answered when an exit is recorded (at once when the last
			// one is), so a waiter learns of it without polling and
			// before the exit command can take the state away.
			m.mu.Lock()
			ch, exited := m.exitRecorded, m.st.Status == "exited"
			m.mu.Unlock()
			if !exited {
				_ = c.SetDeadline(time.Time{})
				<-ch
			}
			s := m.snapshot()
			_, _ = c.Write(append(appendState(nil, &s), '\n'))
		case "stop":
			m.update(func(s *State) { s.UserStopped = true })
			m.stopOne.Do(func() { close(m.stopped) })
			writeReply(c, "")
		case "resize":
			if err := m.resize(req.Height, req.Width); err != nil {
				writeReply(c, "resize: "+err.Error())
				return
			}
			writeReply(c, "")
		default:
			writeReply(c, "unknown op "+quote(req.Op))
		}
	}()
}

func readRequest(c *os.File) (Request, error) {
	buf := make([]byte, 0, 512)
	for {
		if len(buf) == cap(buf) {
			return Request{}, errors.New("request too long")
		}
		n, err := c.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if v, perr := parseJSONObject(buf); perr == nil {
			return Request{Op: v["op"].str, Height: uint16(v["height"].num), Width: uint16(v["width"].num)}, nil
		} else if err != nil {
			return Request{}, perr
		}
	}
}

// writeReply writes Reply: {} or {"Error":msg}.
func writeReply(w io.Writer, msg string) {
	b := []byte("{}\n")
	if msg != "" {
		b = append(appendJSONString([]byte(`{"Error":`), []byte(msg)), "}\n"...)
	}
	_, _ = w.Write(b)
}

// resize sets the pty's window size (TIOCSWINSZ; the kernel sends the
// container's foreground process group SIGWINCH).
func (m *monitor) resize(height, width uint16) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.master == nil {
		return errors.New("no terminal")
	}
	// Through the raw descriptor: Fd() would switch the master to
	// blocking mode under the pending read.
	rc, err := m.master.SyscallConn()
	if err != nil {
		return err
	}
	cerr := rc.Control(func(fd uintptr) {
		err = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Row: height, Col: width})
	})
	if cerr != nil {
		return cerr
	}
	return err
}

// update changes the state and rewrites monitor.json.
func (m *monitor) update(f func(*State)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f(&m.st)
	if err := writeStateFile(filepath.Join(m.o.Bundle, StateFile), &m.st); err != nil {
		m.st.Error = err.Error()
	}
}

func (m *monitor) snapshot() State {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.st
	if s.Health != nil {
		h := *s.Health
		h.Log = append([]HealthResult(nil), h.Log...)
		s.Health = &h
	}
	return s
}

// writeStateFile writes State atomically: readers see the old or the new
// file, never a torn one.
func writeStateFile(path string, s *State) error {
	data := appendState(nil, s)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return wrap("write state", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return wrap("write state", err)
	}
	return nil
}

func oneLine(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c == '\n' || c == '\r' {
			b[i] = ' '
		}
	}
	return string(b)
}
