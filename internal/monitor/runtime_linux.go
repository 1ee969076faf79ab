package monitor

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// ociRuntime drives an OCI runtime with runc's command line. Errors come
// back through the runtime's JSON log (--log-format json), the contract
// runc and berth-runtime share with containerd's shim: the container's
// stdio belongs to the container, not to the runtime's error messages.
type ociRuntime struct {
	path, root, id string
	logPath        string
	r              *reaper
}

// run executes `runtime --root R --log L --log-format json args...` with the
// given stdio and waits for it. A non-zero exit becomes an error carrying
// the runtime's last logged error message.
func (o *ociRuntime) run(stdin, stdout, stderr *os.File, args ...string) error {
	return o.spawn(stdin, stdout, stderr, args...)()
}

// spawn starts what run runs and returns the wait for its outcome, so the
// caller can do other work while the runtime runs.
func (o *ociRuntime) spawn(stdin, stdout, stderr *os.File, args ...string) (wait func() error) {
	argv := append([]string{o.path, "--root", o.root, "--log", o.logPath, "--log-format", "json"}, args...)
	var off int64
	if fi, err := os.Stat(o.logPath); err == nil {
		off = fi.Size()
	}
	_, ch, err := o.r.spawn(argv, stdin, stdout, stderr)
	if err != nil {
		return func() error { return wrap("runtime "+args[0], err) }
	}
	return func() error {
		ws := <-ch
		if ws.Exited() && ws.ExitStatus() == 0 {
			return nil
		}
		if msg := o.lastError(off); msg != "" {
			return errors.New(msg)
		}
		return errors.New("runtime " + args[0] + ": exit status " + strconv.Itoa(exitCode(ws)))
	}
}

// lastError returns the msg of the last "error" entry the runtime logged
// after offset off.
func (o *ociRuntime) lastError(off int64) string {
	f, err := os.Open(o.logPath)
	if err != nil {
		return ""
	}
	defer f.Close()
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return ""
	}
	data, err := io.ReadAll(io.LimitReader(f, 1<<20))
	if err != nil {
		return ""
	}
	var msg string
	for line := range bytes.Lines(data) {
		if v, err := parseJSONObject(line); err == nil && v["level"].str == "error" {
			msg = v["msg"].str
		}
	}
	return msg
}

// create runs `runtime create` and returns the init's pid.
func (o *ociRuntime) create(bundle, consoleSocket string, stdin, stdout, stderr *os.File) (int, error) {
	pidFile := bundle + "/init.pid"
	_ = os.Remove(pidFile)
	args := []string{"create", "--bundle", bundle, "--pid-file", pidFile}
	if consoleSocket != "" {
		args = append(args, "--console-socket", consoleSocket)
	}
	if err := o.run(stdin, stdout, stderr, append(args, o.id)...); err != nil {
		return 0, err
	}
	return readPid(pidFile)
}

// runDetached runs `runtime run --detach`: create and start in one runtime
// process. It returns the init's pid.
func (o *ociRuntime) runDetached(bundle, consoleSocket string, stdin, stdout, stderr *os.File) (int, error) {
	pidFile := bundle + "/init.pid"
	_ = os.Remove(pidFile)
	args := []string{"run", "--detach", "--bundle", bundle, "--pid-file", pidFile}
	if consoleSocket != "" {
		args = append(args, "--console-socket", consoleSocket)
	}
	if err := o.run(stdin, stdout, stderr, append(args, o.id)...); err != nil {
		return 0, err
	}
	return readPid(pidFile)
}

func readPid(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, wrap("read pid file", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, errors.New("pid file " + path + ": bad pid " + quote(string(b)))
	}
	return pid, nil
}

func (o *ociRuntime) start() error { return o.run(nil, nil, nil, "start", o.id) }

func (o *ociRuntime) delete() error { return o.startDelete()() }

// startDelete starts `runtime delete --force` and returns its wait.
func (o *ociRuntime) startDelete() (wait func() error) {
	return o.spawn(nil, nil, nil, "delete", "--force", o.id)
}

// exec runs args in the container with output to out and kills the process
// (through its pid file, the runtime's own pid is not the workload's) when
// it has not finished within timeout. It returns the process's exit code.
func (o *ociRuntime) exec(args []string, out *os.File, timeout time.Duration, pidFile string) (code int, timedOut bool, err error) {
	_ = os.Remove(pidFile)
	argv := append([]string{o.path, "--root", o.root, "--log", o.logPath, "--log-format", "json",
		"exec", "--pid-file", pidFile, o.id}, args...)
	var off int64
	if fi, err := os.Stat(o.logPath); err == nil {
		off = fi.Size()
	}
	pid, ch, err := o.r.spawn(argv, nil, out, out)
	if err != nil {
		return -1, false, wrap("runtime exec", err)
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	var ws unix.WaitStatus
	select {
	case ws = <-ch:
	case <-t.C:
		timedOut = true
		if p, err := readPid(pidFile); err == nil {
			_ = unix.Kill(p, unix.SIGKILL)
		}
		_ = unix.Kill(pid, unix.SIGKILL)
		ws = <-ch
	}
	_ = os.Remove(pidFile)
	if timedOut {
		return -1, true, nil
	}
	// The runtime exits with the process's status; a status it reports
	// itself comes with a logged error.
	if ws.Exited() && ws.ExitStatus() != 0 {
		if msg := o.lastError(off); msg != "" {
			return -1, false, errors.New(msg)
		}
	}
	return exitCode(ws), false, nil
}
