package api

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/berth-dev/berth/internal/engine"
	"github.com/berth-dev/berth/internal/enginetypes"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types"
	"github.com/moby/moby/api/types/common"
	"github.com/moby/moby/api/types/container"
)

func (s *Server) streamRoutes() {
	m := s.mux
	m.Handle("GET /containers/{id}/logs", handler(s.containerLogs))
	m.Handle("POST /containers/{id}/attach", handler(s.containerAttach))
	m.Handle("POST /containers/{id}/resize", handler(s.containerResize))
	m.Handle("POST /containers/{id}/exec", handler(s.execCreate))
	m.Handle("POST /exec/{id}/start", handler(s.execStart))
	m.Handle("GET /exec/{id}/json", handler(s.execInspect))
	m.Handle("POST /exec/{id}/resize", handler(s.execResize))
}

// stdWriter frames writes in Docker's multiplexed stream format: an 8-byte
// header (stream, 0, 0, 0, big-endian length) and the payload, sent in one
// Write so frames from stdout and stderr never interleave on the wire.
type stdWriter struct {
	w io.Writer
	t stdcopy.StdType
}

func (s *stdWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	buf := make([]byte, 8+len(p))
	buf[0] = byte(s.t)
	binary.BigEndian.PutUint32(buf[4:8], uint32(len(p)))
	copy(buf[8:], p)
	if _, err := s.w.Write(buf); err != nil {
		return 0, err
	}
	return len(p), nil
}

// flushWriter pushes every write to the client (logs -f, progress).
type flushWriter struct {
	w  io.Writer
	fl http.Flusher
}

func (f flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if f.fl != nil {
		f.fl.Flush()
	}
	return n, err
}

// outputs returns the writers for a container's stdout and stderr: Docker's
// stdcopy frames without a terminal, the raw stream with one (where the
// terminal already merged them).
func outputs(w io.Writer, tty bool) (stdout, stderr io.Writer) {
	if tty {
		return w, w
	}
	return &stdWriter{w: w, t: stdcopy.Stdout}, &stdWriter{w: w, t: stdcopy.Stderr}
}

func streamType(tty bool) string {
	if tty {
		return types.MediaTypeRawStream
	}
	return types.MediaTypeMultiplexedStream
}

func (s *Server) containerLogs(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	info, err := s.e.ContainerInspect(r.Context(), id, false)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	o := engine.LogsOptions{Stdout: boolValue(r, "stdout"), Stderr: boolValue(r, "stderr"), Follow: boolValue(r, "follow"), Timestamps: boolValue(r, "timestamps"), Tail: -1}
	if !o.Stdout && !o.Stderr {
		return fmt.Errorf("you must choose at least one stream: %w", errdefs.ErrInvalidArgument)
	}
	if t := q.Get("tail"); t != "" && t != "all" {
		if o.Tail, err = strconv.Atoi(t); err != nil {
			return fmt.Errorf("invalid tail %q: %w", t, errdefs.ErrInvalidArgument)
		}
	}
	if o.Since, err = parseTime(q.Get("since")); err != nil {
		return err
	}
	if o.Until, err = parseTime(q.Get("until")); err != nil {
		return err
	}
	tty := info.Config != nil && info.Config.Tty
	w.Header().Set("Content-Type", streamType(tty))
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	if fl != nil {
		fl.Flush()
	}
	stdout, stderr := outputs(flushWriter{w, fl}, tty)
	// The status line is out: a late error can only end the stream.
	_ = s.e.Logs(r.Context(), id, o, stdout, stderr)
	return nil
}

// hijack takes over the connection the way dockerd does for attach and
// exec: 101 UPGRADED when the client asked for an upgrade, else 200 OK,
// then raw bytes both ways. The returned reader holds whatever the client
// already sent after its request.
func hijack(w http.ResponseWriter, r *http.Request, tty bool) (net.Conn, io.Reader, error) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		return nil, nil, fmt.Errorf("connection cannot be hijacked: %w", errdefs.ErrNotSupported)
	}
	conn, rw, err := hj.Hijack()
	if err != nil {
		return nil, nil, fmt.Errorf("hijack: %w", err)
	}
	status := "HTTP/1.1 200 OK\r\n"
	if r.Header.Get("Upgrade") != "" {
		status = "HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
	}
	if _, err := fmt.Fprintf(conn, "%sContent-Type: %s\r\nApi-Version: %s\r\n\r\n", status, streamType(tty), APIVersion); err != nil {
		conn.Close()
		return nil, nil, err
	}
	var in io.Reader = conn
	if rw != nil && rw.Reader.Buffered() > 0 {
		in = io.MultiReader(io.LimitReader(rw.Reader, int64(rw.Reader.Buffered())), conn)
	}
	return conn, in, nil
}

// containerAttach serves POST /containers/{id}/attach. A client that
// attaches before starting the container (docker run, berth run) gets all
// of its output: for a container still being created we wait for its start
// and stream the json-file log from the beginning (the same race-free
// source the in-process StartAttached uses; a short-lived workload is often
// gone before a socket attach could connect), with input through the
// monitor's attach socket. For a running container the attach socket
// carries the stream live.
func (s *Server) containerAttach(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	info, err := s.e.ContainerInspect(r.Context(), id, false)
	if err != nil {
		return err
	}
	tty := info.Config != nil && info.Config.Tty
	wantIn, wantOut, wantErr := boolValue(r, "stdin"), boolValue(r, "stdout"), boolValue(r, "stderr")
	logs, stream := boolValue(r, "logs"), boolValue(r, "stream")
	created := info.State != nil && info.State.Status == container.StateCreated
	if !created && !stream && !logs {
		return fmt.Errorf("bad attach parameters: nothing to stream: %w", errdefs.ErrInvalidArgument)
	}
	var keys []byte
	if k := r.URL.Query().Get("detachKeys"); k != "" {
		if keys, err = enginetypes.ParseDetachKeys(k); err != nil {
			return err
		}
	}
	// The run is registered before the hijack answers the client: the
	// client sends its start as soon as it has the answer, and a start
	// that finds no run starts the container without this attach (whose
	// output then comes from the log, and whose --rm removal is left to
	// the monitor, racing the client's wait).
	var run *attachedRun
	registered := false
	if created {
		run, registered = s.registerRun(info.ID)
	}
	conn, in, err := hijack(w, r, tty)
	if err != nil {
		if registered {
			s.dropRun(info.ID, run)
		}
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stdout, stderr := outputs(conn, tty)
	if !wantOut {
		stdout = io.Discard
	}
	if !wantErr {
		stderr = io.Discard
	}
	// Without stdin the client half-closes at once (docker does), so EOF
	// on input does not mean it left: a gone client shows as write errors.
	var stdin io.Reader
	if wantIn {
		stdin = in
	}
	opts := engine.AttachOptions{Stdin: stdin, Stdout: stdout, Stderr: stderr, DetachKeys: keys}
	if created {
		if registered && s.runAttached(ctx, info.ID, run, opts) {
			if run.err != nil && !errors.Is(run.err, engine.ErrDetached) && ctx.Err() == nil {
				var ee *engine.ExitError
				if !errors.As(run.err, &ee) { // start errors go to the start request
					writeStreamError(stderr, run.err)
				}
			}
			return nil
		}
		if err := s.waitStarted(ctx, id); err != nil {
			return nil
		}
	}
	if !(created || logs) {
		if err := s.e.Attach(ctx, id, opts); err != nil && !errors.Is(err, engine.ErrDetached) && ctx.Err() == nil {
			writeStreamError(stderr, err)
		}
		return nil
	}
	if stdin != nil {
		// Input goes through the attach socket; output comes from the log.
		go func() {
			_ = s.e.Attach(ctx, id, engine.AttachOptions{Stdin: stdin, Stdout: io.Discard, Stderr: io.Discard})
		}()
	}
	lo := engine.LogsOptions{Stdout: wantOut, Stderr: wantErr, Follow: stream || created, Tail: -1}
	if !wantOut && !wantErr {
		lo.Stdout, lo.Stderr, stdout, stderr = true, true, io.Discard, io.Discard
	}
	if err := s.e.Logs(ctx, id, lo, stdout, stderr); err != nil && ctx.Err() == nil {
		writeStreamError(stderr, err)
	}
	return nil
}

// waitStarted returns once the container has left the created state (it
// was started, or removed), or ctx ends.
func (s *Server) waitStarted(ctx context.Context, id string) error {
	for {
		info, err := s.e.ContainerInspect(ctx, id, false)
		if err != nil {
			return err
		}
		if info.State == nil || info.State.Status != container.StateCreated {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func writeStreamError(w io.Writer, err error) {
	_, _ = io.WriteString(w, "Error: "+Message(err)+"\n")
}

func (s *Server) containerResize(w http.ResponseWriter, r *http.Request) error {
	h, err := intValue(r, "h", 0)
	if err != nil {
		return err
	}
	wd, err := intValue(r, "w", 0)
	if err != nil {
		return err
	}
	if h < 0 || wd < 0 {
		return fmt.Errorf("invalid terminal size %dx%d: %w", h, wd, errdefs.ErrInvalidArgument)
	}
	if err := s.e.Resize(r.Context(), r.PathValue("id"), uint(h), uint(wd)); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// execConfig is one exec instance: created by POST /containers/{id}/exec,
// run by POST /exec/{id}/start, inspected for its exit code afterwards.
type execConfig struct {
	id, container string
	req           container.ExecCreateRequest
	running       bool
	started       bool
	exitCode      *int
	created       time.Time
	// term is the exec's terminal while it runs (Tty over a hijacked
	// connection); size is the latest [height, width] asked for, applied
	// when the terminal is made.
	term *execTerminal
	size *[2]uint
}

func newID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (s *Server) execCreate(w http.ResponseWriter, r *http.Request) error {
	var req container.ExecCreateRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	if len(req.Cmd) == 0 {
		return fmt.Errorf("no exec command specified: %w", errdefs.ErrInvalidArgument)
	}
	info, err := s.e.ContainerInspect(r.Context(), r.PathValue("id"), false)
	if err != nil {
		return err
	}
	if info.State == nil || !info.State.Running {
		return fmt.Errorf("container %s is not running: %w", info.ID, errdefs.ErrConflict)
	}
	x := &execConfig{id: newID(), container: info.ID, req: req, created: time.Now()}
	s.mu.Lock()
	// Finished execs nobody inspected are dropped after an hour.
	for k, old := range s.execs {
		if !old.running && time.Since(old.created) > time.Hour {
			delete(s.execs, k)
		}
	}
	s.execs[x.id] = x
	s.mu.Unlock()
	writeJSON(w, http.StatusCreated, common.IDResponse{ID: x.id})
	return nil
}

func (s *Server) execLookup(id string) (*execConfig, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	x, ok := s.execs[id]
	if !ok {
		return nil, fmt.Errorf("No such exec instance: %s: %w", id, errdefs.ErrNotFound)
	}
	return x, nil
}

func (s *Server) execStart(w http.ResponseWriter, r *http.Request) error {
	x, err := s.execLookup(r.PathValue("id"))
	if err != nil {
		return err
	}
	var req container.ExecStartRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	s.mu.Lock()
	if x.started {
		s.mu.Unlock()
		return fmt.Errorf("exec %s has already been started: %w", x.id, errdefs.ErrConflict)
	}
	x.started, x.running = true, true
	s.mu.Unlock()
	tty := x.req.Tty || req.Tty
	o := engine.ExecOptions{Cmd: x.req.Cmd, Tty: tty, Detach: req.Detach, Env: x.req.Env, User: x.req.User, WorkingDir: x.req.WorkingDir, Privileged: x.req.Privileged}
	finish := func(code int) {
		s.mu.Lock()
		x.running, x.exitCode = false, &code
		s.mu.Unlock()
	}
	if req.Detach {
		code, err := s.e.Exec(r.Context(), x.container, o, nil, io.Discard, io.Discard)
		if err != nil {
			finish(exitCodeOf(err))
			return err
		}
		if code != 0 {
			finish(code)
		}
		w.WriteHeader(http.StatusOK)
		return nil
	}
	conn, in, err := hijack(w, r, tty)
	if err != nil {
		finish(exitCodeOf(err))
		return err
	}
	defer conn.Close()
	stdout, stderr := outputs(conn, tty)
	if !x.req.AttachStdout {
		stdout = io.Discard
	}
	if !x.req.AttachStderr && !tty {
		stderr = io.Discard
	}
	var stdin io.Reader
	if x.req.AttachStdin {
		stdin = in
	}
	if tty {
		if t := s.execTerminalFor(x, req.ConsoleSize); t != nil {
			defer s.dropExecTerminal(x)
			if x.req.AttachStdin {
				go func() { _, _ = io.Copy(t.input(), in) }()
			}
			stdin = t.stdin()
		}
	}
	code, err := s.e.Exec(r.Context(), x.container, o, stdin, stdout, stderr)
	if err != nil {
		code = exitCodeOf(err)
		e2 := stderr
		if e2 == io.Discard {
			e2, _ = outputs(conn, tty)
		}
		_, _ = io.WriteString(e2, Message(err)+"\n")
	}
	finish(code)
	return nil
}

// exitCodeOf is Docker's exit status for an exec that could not run.
func exitCodeOf(err error) int {
	var ee *engine.ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	return 126
}

func (s *Server) execInspect(w http.ResponseWriter, r *http.Request) error {
	x, err := s.execLookup(r.PathValue("id"))
	if err != nil {
		return err
	}
	s.mu.Lock()
	resp := container.ExecInspectResponse{
		ID: x.id, ContainerID: x.container, Running: x.running, OpenStdin: x.req.AttachStdin,
		OpenStdout: x.req.AttachStdout, OpenStderr: x.req.AttachStderr, CanRemove: !x.running && x.started,
		ProcessConfig: &container.ExecProcessConfig{Tty: x.req.Tty, Privileged: &x.req.Privileged, User: x.req.User},
	}
	if len(x.req.Cmd) > 0 {
		resp.ProcessConfig.Entrypoint, resp.ProcessConfig.Arguments = x.req.Cmd[0], x.req.Cmd[1:]
	}
	if x.exitCode != nil {
		c := *x.exitCode
		resp.ExitCode = &c
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// execTerminalFor makes the terminal a Tty exec runs on, sized from the
// start request, else the create request, else the last resize. Without
// one (not Linux, no pty) the exec runs on the connection as before, at
// a fixed size.
func (s *Server) execTerminalFor(x *execConfig, startSize *[2]uint) *execTerminal {
	s.mu.Lock()
	defer s.mu.Unlock()
	size := x.req.ConsoleSize
	if x.size != nil {
		size = x.size
	}
	if startSize != nil {
		size = startSize
	}
	var h, w uint
	if size != nil {
		h, w = size[0], size[1]
	}
	t, err := newExecTerminal(h, w)
	if err != nil {
		return nil
	}
	x.term = t
	return t
}

func (s *Server) dropExecTerminal(x *execConfig) {
	s.mu.Lock()
	t := x.term
	x.term = nil
	s.mu.Unlock()
	if t != nil {
		t.close()
	}
}

// execResize serves POST /exec/{id}/resize?h=&w=: the size of a running
// Tty exec's terminal, or of one not started yet (kept for its start).
func (s *Server) execResize(w http.ResponseWriter, r *http.Request) error {
	x, err := s.execLookup(r.PathValue("id"))
	if err != nil {
		return err
	}
	h, err := intValue(r, "h", 0)
	if err != nil {
		return err
	}
	wd, err := intValue(r, "w", 0)
	if err != nil {
		return err
	}
	if h <= 0 || wd <= 0 || h > 0xffff || wd > 0xffff {
		return fmt.Errorf("invalid terminal size %dx%d: %w", h, wd, errdefs.ErrInvalidArgument)
	}
	s.mu.Lock()
	x.size = &[2]uint{uint(h), uint(wd)}
	t, started, running := x.term, x.started, x.running
	s.mu.Unlock()
	switch {
	case t != nil:
		if err := t.resize(uint(h), uint(wd)); err != nil {
			return err
		}
	case started && !running:
		return fmt.Errorf("exec %s is not running: %w", x.id, errdefs.ErrConflict)
	case started && !x.req.Tty:
		return fmt.Errorf("exec %s has no terminal to resize: %w", x.id, errdefs.ErrConflict)
	}
	w.WriteHeader(http.StatusOK)
	return nil
}
