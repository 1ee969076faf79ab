package engine

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/moby/moby/api/types/events"
)

// Exec runs a process in a running container through the runtime and
// returns its exit code (Docker's 126/127 when it cannot be started).
// With Tty and a terminal as stdin, the runtime itself puts the terminal
// in raw mode and forwards window size changes.
func (e *Engine) Exec(ctx context.Context, ref string, opts ExecOptions, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	c, err := e.lookupContainer(ref)
	if err != nil {
		return 0, err
	}
	st := e.state(c)
	if st.Status != "running" {
		return 0, fmt.Errorf("container %s is not running: %w", c.ID, errdefs.ErrConflict)
	}
	if st.Paused {
		return 0, fmt.Errorf("container %s is paused, unpause the container before exec: %w", c.ID, errdefs.ErrConflict)
	}
	if len(opts.Cmd) == 0 {
		return 0, fmt.Errorf("no command specified: %w", errdefs.ErrInvalidArgument)
	}
	logPath := filepath.Join(e.bundleDir(c.ID), "exec-"+strconv.Itoa(os.Getpid())+".log")
	defer os.Remove(logPath)
	args := []string{"--root", e.runtimeRoot(), "--log", logPath, "--log-format", "json", "exec"}
	if opts.Tty {
		args = append(args, "--tty")
	}
	if opts.Detach {
		args = append(args, "--detach")
	}
	if opts.WorkingDir != "" {
		args = append(args, "--cwd", opts.WorkingDir)
	}
	user := opts.User
	if user == "" {
		user = c.Config.User
	}
	if user != "" {
		u, err := resolveUser(e.rootfsDir(c.ID), user)
		if err != nil {
			return 0, err
		}
		args = append(args, "--user", fmt.Sprintf("%d:%d", u.uid, u.gid))
		for _, g := range u.groups {
			args = append(args, "--additional-gids", strconv.FormatUint(uint64(g), 10))
		}
	}
	for _, kv := range opts.Env {
		args = append(args, "--env", kv)
	}
	args = append(args, c.ID)
	args = append(args, opts.Cmd...)
	cmd := exec.CommandContext(ctx, e.containerRuntime(c), args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	e.emit(events.ContainerEventType, events.Action("exec_start: "+strings.Join(opts.Cmd, " ")), c, nil)
	err = cmd.Run()
	if err == nil {
		return 0, nil
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return 0, fmt.Errorf("exec in %s: %w", c.Name, err)
	}
	if msg := lastRuntimeError(logPath); msg != "" {
		if se := startError(msg); se != nil {
			var x *ExitError
			if errors.As(se, &x) {
				return x.Code, x
			}
		}
	}
	code := ee.ExitCode()
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		code = 128 + int(ws.Signal())
	}
	return code, nil
}

// lastRuntimeError returns the last error the runtime logged (JSON lines).
func lastRuntimeError(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	var last string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var rec struct{ Level, Msg string }
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Level == "error" {
			last = rec.Msg
		}
	}
	return last
}
