package client

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/enginetypes"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
)

func cpath(ref, action string) string {
	p := "/containers/" + url.PathEscape(ref)
	if action != "" {
		p += "/" + action
	}
	return p
}

// Create makes a container (POST /containers/create).
func (c *Client) Create(ctx context.Context, o enginetypes.CreateOptions) (*enginetypes.Container, error) {
	q := url.Values{}
	if o.Name != "" {
		q.Set("name", o.Name)
	}
	cfg, hc := o.Config, o.HostConfig
	var resp container.CreateResponse
	if err := c.doJSON(ctx, http.MethodPost, "/containers/create", q, container.CreateRequest{Config: &cfg, HostConfig: &hc, NetworkingConfig: o.NetworkingConfig}, &resp); err != nil {
		return nil, err
	}
	return &enginetypes.Container{ID: resp.ID, Name: o.Name, Config: o.Config, HostConfig: o.HostConfig}, nil
}

// startError gives a failed start Docker's exit codes, derived from the
// message as the docker CLI does (the server sends the runtime's words).
func startError(err error) error {
	msg := err.Error()
	for _, cat := range []error{errdefs.ErrInvalidArgument, errdefs.ErrConflict, errdefs.ErrNotFound} {
		if errors.Is(err, cat) {
			msg = strings.TrimSuffix(msg, ": "+cat.Error())
		}
	}
	switch {
	case strings.Contains(msg, "executable file not found"), strings.Contains(msg, "no such file or directory"):
		return &enginetypes.ExitError{Code: 127, Msg: msg}
	case strings.Contains(msg, "permission denied"), strings.Contains(msg, "is a directory"):
		return &enginetypes.ExitError{Code: 126, Msg: msg}
	}
	return err
}

// Start starts a container; starting a running one is not an error.
func (c *Client) Start(ctx context.Context, ref string) error {
	if err := c.doJSON(ctx, http.MethodPost, cpath(ref, "start"), nil, nil, nil); err != nil {
		return startError(err)
	}
	return nil
}

func (c *Client) isTTY(ctx context.Context, ref string) (bool, error) {
	info, err := c.ContainerInspect(ctx, ref, false)
	if err != nil {
		return false, err
	}
	return info.Config != nil && info.Config.Tty, nil
}

// StartAttached attaches, then starts, then streams until the container's
// output ends and returns its exit code — Docker's `run` sequence, so the
// daemon delivers the output from the first byte.
func (c *Client) StartAttached(ctx context.Context, ref string, opts enginetypes.AttachOptions) (int, error) {
	info, err := c.ContainerInspect(ctx, ref, false)
	if err != nil {
		return 0, err
	}
	tty := info.Config != nil && info.Config.Tty
	st, err := c.openAttach(ctx, info.ID, tty, opts, true)
	if err != nil {
		return 0, err
	}
	defer st.close()
	// The wait goes in before the start, as the docker CLI's does: an --rm
	// container may be removed before a wait sent after its output ended
	// arrives, and then its exit code is lost ("No such container").
	wctx, cancel := context.WithCancel(ctx) // ends the wait when the start fails
	defer cancel()
	exit, err := c.waitNextExit(wctx, info.ID)
	if err != nil {
		return 0, err
	}
	if err := c.Start(ctx, info.ID); err != nil {
		return 0, err
	}
	if err := st.wait(ctx); err != nil {
		return 0, err
	}
	r := <-exit
	return r.code, r.err
}

type waitResult struct {
	code int
	err  error
}

// waitNextExit sends a wait for the container's next exit and returns
// once the daemon has answered its header (the wait is in place); the
// result arrives on the channel.
func (c *Client) waitNextExit(ctx context.Context, id string) (<-chan waitResult, error) {
	resp, err := c.do(ctx, http.MethodPost, cpath(id, "wait"), url.Values{"condition": {string(container.WaitConditionNextExit)}}, nil, "")
	if err != nil {
		return nil, err
	}
	ch := make(chan waitResult, 1)
	go func() {
		defer resp.Body.Close()
		var wr container.WaitResponse
		if err := json.NewDecoder(resp.Body).Decode(&wr); err != nil {
			ch <- waitResult{err: fmt.Errorf("wait %s: decode response: %w", id, err)}
			return
		}
		r := waitResult{code: int(wr.StatusCode)}
		if wr.Error != nil && wr.Error.Message != "" {
			r.err = errors.New(wr.Error.Message)
		}
		ch <- r
	}()
	return ch, nil
}

// Attach connects to a running container until it exits or the user
// detaches (enginetypes.ErrDetached).
func (c *Client) Attach(ctx context.Context, ref string, opts enginetypes.AttachOptions) error {
	tty, err := c.isTTY(ctx, ref)
	if err != nil {
		return err
	}
	st, err := c.openAttach(ctx, ref, tty, opts, false)
	if err != nil {
		return err
	}
	defer st.close()
	return st.wait(ctx)
}

func (c *Client) openAttach(ctx context.Context, ref string, tty bool, opts enginetypes.AttachOptions, fromStart bool) (*stream, error) {
	q := url.Values{"stream": {"1"}, "stdout": {"1"}, "stderr": {"1"}}
	if fromStart {
		q.Set("logs", "1")
	}
	if opts.Stdin != nil {
		q.Set("stdin", "1")
	}
	keys := opts.DetachKeys
	if keys == nil {
		keys = enginetypes.DefaultDetachKeys
	}
	if !tty {
		keys = nil
	} else {
		q.Set("detachKeys", detachKeysParam(keys))
	}
	conn, br, _, err := c.hijack(ctx, cpath(ref, "attach"), q, nil)
	if err != nil {
		return nil, err
	}
	return startStream(conn, br, tty, opts.Stdin, opts.Stdout, opts.Stderr, keys), nil
}

// Resize sets the container's terminal size.
func (c *Client) Resize(ctx context.Context, ref string, height, width uint) error {
	q := url.Values{"h": {strconv.FormatUint(uint64(height), 10)}, "w": {strconv.FormatUint(uint64(width), 10)}}
	return c.doJSON(ctx, http.MethodPost, cpath(ref, "resize"), q, nil, nil)
}

func stopQuery(o enginetypes.StopOptions) url.Values {
	q := url.Values{}
	if o.Signal != "" {
		q.Set("signal", o.Signal)
	}
	if o.Timeout != nil {
		q.Set("t", strconv.Itoa(*o.Timeout))
	}
	return q
}

// Stop stops a container (a stopped one is not an error).
func (c *Client) Stop(ctx context.Context, ref string, o enginetypes.StopOptions) error {
	return c.doJSON(ctx, http.MethodPost, cpath(ref, "stop"), stopQuery(o), nil, nil)
}

// Restart stops and starts a container.
func (c *Client) Restart(ctx context.Context, ref string, o enginetypes.StopOptions) error {
	if err := c.doJSON(ctx, http.MethodPost, cpath(ref, "restart"), stopQuery(o), nil, nil); err != nil {
		return startError(err)
	}
	return nil
}

// Kill signals a container.
func (c *Client) Kill(ctx context.Context, ref, sig string) error {
	q := url.Values{}
	if sig != "" {
		q.Set("signal", sig)
	}
	return c.doJSON(ctx, http.MethodPost, cpath(ref, "kill"), q, nil, nil)
}

// Wait blocks until the container stops and returns its exit code.
func (c *Client) Wait(ctx context.Context, ref string) (int, error) {
	var resp container.WaitResponse
	if err := c.doJSON(ctx, http.MethodPost, cpath(ref, "wait"), nil, nil, &resp); err != nil {
		return 0, err
	}
	if resp.Error != nil && resp.Error.Message != "" {
		return int(resp.StatusCode), errors.New(resp.Error.Message)
	}
	return int(resp.StatusCode), nil
}

// Remove deletes a container.
func (c *Client) Remove(ctx context.Context, ref string, o enginetypes.RemoveOptions) error {
	q := url.Values{}
	if o.Force {
		q.Set("force", "1")
	}
	if o.Volumes {
		q.Set("v", "1")
	}
	return c.doJSON(ctx, http.MethodDelete, cpath(ref, ""), q, nil, nil)
}

// Pause freezes a container.
func (c *Client) Pause(ctx context.Context, ref string) error {
	return c.doJSON(ctx, http.MethodPost, cpath(ref, "pause"), nil, nil, nil)
}

// Unpause thaws a container.
func (c *Client) Unpause(ctx context.Context, ref string) error {
	return c.doJSON(ctx, http.MethodPost, cpath(ref, "unpause"), nil, nil, nil)
}

// Rename renames a container.
func (c *Client) Rename(ctx context.Context, ref, name string) error {
	return c.doJSON(ctx, http.MethodPost, cpath(ref, "rename"), url.Values{"name": {name}}, nil, nil)
}

// Update changes resources and the restart policy.
func (c *Client) Update(ctx context.Context, ref string, r container.Resources, restart *container.RestartPolicy) error {
	u := container.UpdateConfig{Resources: r}
	if restart != nil {
		u.RestartPolicy = *restart
	}
	return c.doJSON(ctx, http.MethodPost, cpath(ref, "update"), nil, u, &container.UpdateResponse{})
}

// List is `ps`.
func (c *Client) List(ctx context.Context, o enginetypes.ListOptions) ([]container.Summary, error) {
	q := url.Values{}
	if o.All {
		q.Set("all", "1")
	}
	if o.Size {
		q.Set("size", "1")
	}
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	if len(o.Filters) > 0 {
		q.Set("filters", filtersParam(o.Filters))
	}
	var out []container.Summary
	return out, c.doJSON(ctx, http.MethodGet, "/containers/json", q, nil, &out)
}

// ContainerInspect is `inspect` of a container.
func (c *Client) ContainerInspect(ctx context.Context, ref string, size bool) (container.InspectResponse, error) {
	q := url.Values{}
	if size {
		q.Set("size", "1")
	}
	var out container.InspectResponse
	return out, c.doJSON(ctx, http.MethodGet, cpath(ref, "json"), q, nil, &out)
}

func unixTime(t time.Time) string {
	return fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond())
}

// Logs writes the container's logged output.
func (c *Client) Logs(ctx context.Context, ref string, o enginetypes.LogsOptions, stdout, stderr io.Writer) error {
	if !o.Stdout && !o.Stderr {
		o.Stdout, o.Stderr = true, true
	}
	q := url.Values{"stdout": {strconv.FormatBool(o.Stdout)}, "stderr": {strconv.FormatBool(o.Stderr)}}
	if o.Follow {
		q.Set("follow", "1")
	}
	if o.Timestamps {
		q.Set("timestamps", "1")
	}
	if o.Tail >= 0 {
		q.Set("tail", strconv.Itoa(o.Tail))
	}
	if !o.Since.IsZero() {
		q.Set("since", unixTime(o.Since))
	}
	if !o.Until.IsZero() {
		q.Set("until", unixTime(o.Until))
	}
	resp, err := c.do(ctx, http.MethodGet, cpath(ref, "logs"), q, nil, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return copyOutput(resp.Body, resp.Header.Get("Content-Type") != multiplexed, stdout, stderr)
}

// Exec runs a process in a running container and returns its exit code.
func (c *Client) Exec(ctx context.Context, ref string, o enginetypes.ExecOptions, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	req := container.ExecCreateRequest{Cmd: o.Cmd, Tty: o.Tty, Env: o.Env, User: o.User, WorkingDir: o.WorkingDir, Privileged: o.Privileged,
		AttachStdin: stdin != nil && !o.Detach, AttachStdout: !o.Detach, AttachStderr: !o.Detach}
	var tf *os.File
	if o.Tty && !o.Detach {
		// The terminal whose size the exec's follows: stdin's, else stdout's.
		if tf = Terminal(stdin, stdout); tf != nil {
			req.ConsoleSize = TerminalSize(tf)
		}
	}
	var created struct {
		ID string `json:"Id"`
	}
	if err := c.doJSON(ctx, http.MethodPost, cpath(ref, "exec"), nil, req, &created); err != nil {
		return 0, err
	}
	start := container.ExecStartRequest{Detach: o.Detach, Tty: o.Tty}
	if o.Detach {
		if err := c.doJSON(ctx, http.MethodPost, "/exec/"+created.ID+"/start", nil, start, nil); err != nil {
			return 0, err
		}
		return 0, nil
	}
	conn, br, _, err := c.hijack(ctx, "/exec/"+created.ID+"/start", nil, start)
	if err != nil {
		return 0, err
	}
	if tf != nil {
		// Raw mode only when the terminal is our input: a terminal that
		// merely shows the output keeps its line discipline.
		raw := req.AttachStdin && any(stdin) == any(tf)
		stop := c.execTerminal(ctx, created.ID, tf, raw)
		defer stop()
	}
	st := startStream(conn, br, o.Tty, stdin, stdout, stderr, nil)
	err = st.wait(ctx)
	st.close()
	if err != nil {
		return 0, err
	}
	var x container.ExecInspectResponse
	if err := c.doJSON(ctx, http.MethodGet, "/exec/"+created.ID+"/json", nil, nil, &x); err != nil {
		return 0, err
	}
	if x.ExitCode == nil {
		return 0, nil
	}
	return *x.ExitCode, nil
}

// Top lists the container's processes.
func (c *Client) Top(ctx context.Context, ref string, psArgs []string) (container.TopResponse, error) {
	q := url.Values{}
	if len(psArgs) > 0 {
		q.Set("ps_args", strings.Join(psArgs, " "))
	}
	var out container.TopResponse
	return out, c.doJSON(ctx, http.MethodGet, cpath(ref, "top"), q, nil, &out)
}

// ContainerStats samples the container's counters once.
func (c *Client) ContainerStats(ctx context.Context, ref string) (enginetypes.Stats, error) {
	var s container.StatsResponse
	if err := c.doJSON(ctx, http.MethodGet, cpath(ref, "stats"), url.Values{"stream": {"0"}}, nil, &s); err != nil {
		return enginetypes.Stats{}, err
	}
	out := enginetypes.Stats{ID: s.ID, Name: strings.TrimPrefix(s.Name, "/"), Read: s.Read, CPUNanos: s.CPUStats.CPUUsage.TotalUsage,
		MemUsage: s.MemoryStats.Usage, MemLimit: s.MemoryStats.Limit, MemCache: s.MemoryStats.Stats["inactive_file"],
		Pids: s.PidsStats.Current, OnlineCPUs: int(s.CPUStats.OnlineCPUs)}
	for _, b := range s.BlkioStats.IoServiceBytesRecursive {
		switch strings.ToLower(b.Op) {
		case "read":
			out.BlkRead += b.Value
		case "write":
			out.BlkWrite += b.Value
		}
	}
	return out, nil
}

// StatPath describes a path in the container (HEAD …/archive).
func (c *Client) StatPath(ctx context.Context, ref, p string) (container.PathStat, error) {
	resp, err := c.do(ctx, http.MethodHead, cpath(ref, "archive"), url.Values{"path": {p}}, nil, "")
	if err != nil {
		return container.PathStat{}, err
	}
	resp.Body.Close()
	return decodePathStat(resp.Header.Get("X-Docker-Container-Path-Stat"))
}

func decodePathStat(h string) (container.PathStat, error) {
	var st container.PathStat
	b, err := base64.StdEncoding.DecodeString(h)
	if err != nil {
		return st, fmt.Errorf("path stat header: %w", err)
	}
	return st, json.Unmarshal(b, &st)
}

// CopyFrom writes a tar of the container's path to w.
func (c *Client) CopyFrom(ctx context.Context, ref, p string, w io.Writer) error {
	resp, err := c.do(ctx, http.MethodGet, cpath(ref, "archive"), url.Values{"path": {p}}, nil, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(w, resp.Body)
	return err
}

// CopyTo extracts the tar r into the container's directory dir.
func (c *Client) CopyTo(ctx context.Context, ref, dir string, r io.Reader) error {
	resp, err := c.do(ctx, http.MethodPut, cpath(ref, "archive"), url.Values{"path": {dir}}, r, "application/x-tar")
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// Export writes the container's filesystem as a tar.
func (c *Client) Export(ctx context.Context, ref string, w io.Writer) error {
	resp, err := c.do(ctx, http.MethodGet, cpath(ref, "export"), nil, nil, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(w, resp.Body)
	return err
}

// Diff lists the container's filesystem changes.
func (c *Client) Diff(ctx context.Context, ref string) ([]container.FilesystemChange, error) {
	var out []container.FilesystemChange
	return out, c.doJSON(ctx, http.MethodGet, cpath(ref, "changes"), nil, nil, &out)
}

// Commit makes an image from a container and returns its ID.
func (c *Client) Commit(ctx context.Context, ref string, o enginetypes.CommitOptions) (string, error) {
	q := url.Values{"container": {ref}, "pause": {strconv.FormatBool(o.Pause)}}
	if o.Reference != "" {
		q.Set("repo", o.Reference)
	}
	if o.Comment != "" {
		q.Set("comment", o.Comment)
	}
	if o.Author != "" {
		q.Set("author", o.Author)
	}
	for _, ch := range o.Changes {
		q.Add("changes", ch)
	}
	var body any
	if o.Config != nil {
		body = o.Config
	}
	var out struct {
		ID string `json:"Id"`
	}
	return out.ID, c.doJSON(ctx, http.MethodPost, "/commit", q, body, &out)
}

// PruneContainers removes stopped containers.
func (c *Client) PruneContainers(ctx context.Context, filters map[string][]string) (container.PruneReport, error) {
	q := url.Values{}
	if len(filters) > 0 {
		q.Set("filters", filtersParam(filters))
	}
	var out container.PruneReport
	return out, c.doJSON(ctx, http.MethodPost, "/containers/prune", q, nil, &out)
}

// Events calls fn for each matching event, oldest first; opts.Filter runs
// here, on the client.
func (c *Client) Events(ctx context.Context, opts enginetypes.EventsOptions, fn func(events.Message) error) error {
	q := url.Values{}
	if !opts.Since.IsZero() {
		q.Set("since", unixTime(opts.Since))
	}
	until := opts.Until
	if until.IsZero() && !opts.Follow {
		until = time.Now()
	}
	if !until.IsZero() {
		q.Set("until", unixTime(until))
	}
	resp, err := c.do(ctx, http.MethodGet, "/events", q, nil, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) || ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("events: %w", err)
		}
		var m events.Message
		if err := json.Unmarshal(raw, &m); err != nil {
			return fmt.Errorf("events: %w", err)
		}
		if m.Type == "" {
			var e struct {
				Error string `json:"error"`
			}
			if json.Unmarshal(raw, &e) == nil && e.Error != "" {
				return errors.New(e.Error)
			}
		}
		if opts.Filter != nil && !opts.Filter(m) {
			continue
		}
		if err := fn(m); err != nil {
			return err
		}
	}
}
