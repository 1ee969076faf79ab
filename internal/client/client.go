// Package client is the engine's surface over the Docker Engine API: the
// HTTP client `berth --host unix://…` uses to reach berthd (internal/api).
// Its methods mirror the in-process engine's, take and return the same
// enginetypes and moby API types, and map HTTP statuses back to errdefs
// categories, so the CLI behaves the same on both paths.
package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/moby/moby/api/types/system"
)

// APIVersion is the Docker Engine API version the client speaks.
const APIVersion = "1.44"

// Client talks to one berthd.
type Client struct {
	host string // unix socket path
	http *http.Client

	infoOnce sync.Once
	info     system.Info
	infoErr  error
}

// New returns a client for host ("unix:///run/berth/berth.sock").
func New(host string) (*Client, error) {
	path, ok := strings.CutPrefix(host, "unix://")
	if !ok || path == "" {
		return nil, fmt.Errorf("host %q: want unix:///path/to/socket: %w", host, errdefs.ErrInvalidArgument)
	}
	c := &Client{host: path}
	c.http = &http.Client{Transport: &http.Transport{
		DialContext:     func(ctx context.Context, _, _ string) (net.Conn, error) { return c.dial(ctx) },
		MaxIdleConns:    4,
		IdleConnTimeout: 30 * time.Second,
	}}
	return c, nil
}

func (c *Client) dial(ctx context.Context) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.host)
	if err != nil {
		return nil, fmt.Errorf("cannot connect to berthd at unix://%s (is it running?): %w: %w", c.host, err, errdefs.ErrUnavailable)
	}
	return conn, nil
}

// Close releases idle connections.
func (c *Client) Close() error {
	c.http.CloseIdleConnections()
	return nil
}

func apiPath(p string, q url.Values) string {
	s := "/v" + APIVersion + p
	if len(q) > 0 {
		s += "?" + q.Encode()
	}
	return s
}

// do sends a request and returns the response of a 2xx/304 status; other
// statuses become errors classified by errdefs.
func (c *Client) do(ctx context.Context, method, p string, q url.Values, body io.Reader, contentType string) (*http.Response, error) {
	return c.doHeader(ctx, method, p, q, body, contentType, nil)
}

// doHeader is do with extra request headers (registry credentials).
func (c *Client) doHeader(ctx context.Context, method, p string, q url.Values, body io.Reader, contentType string, h http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://berth"+apiPath(p, q), body)
	if err != nil {
		return nil, err
	}
	for k, vs := range h {
		req.Header[k] = vs
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, err
	}
	if resp.StatusCode >= 400 {
		defer resp.Body.Close()
		return nil, decodeError(resp)
	}
	return resp, nil
}

// doJSON sends v as JSON (when non-nil) and decodes the answer into out
// (when non-nil).
func (c *Client) doJSON(ctx context.Context, method, p string, q url.Values, v, out any) error {
	var body io.Reader
	ct := ""
	if v != nil {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		body, ct = strings.NewReader(string(b)), "application/json"
	}
	resp, err := c.do(ctx, method, p, q, body, ct)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil || resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusNotModified {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode response: %w", method, p, err)
	}
	return nil
}

// statusError maps a status back to the errdefs category the server
// classified; the message is the server's, for people.
func statusError(code int, msg string) error {
	var cat error
	switch code {
	case http.StatusNotFound:
		cat = errdefs.ErrNotFound
	case http.StatusConflict:
		cat = errdefs.ErrConflict
	case http.StatusBadRequest:
		cat = errdefs.ErrInvalidArgument
	case http.StatusForbidden, http.StatusUnauthorized:
		cat = errdefs.ErrPermission
	case http.StatusNotImplemented:
		cat = errdefs.ErrNotSupported
	case http.StatusServiceUnavailable:
		cat = errdefs.ErrUnavailable
	default:
		return errors.New(msg)
	}
	return fmt.Errorf("%s: %w", msg, cat)
}

func decodeError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var e struct {
		Message string `json:"message"`
	}
	msg := strings.TrimSpace(string(b))
	if json.Unmarshal(b, &e) == nil && e.Message != "" {
		msg = e.Message
	}
	if msg == "" {
		msg = resp.Status
	}
	return statusError(resp.StatusCode, msg)
}

// hijack sends a request that takes over the connection (attach, exec
// start) and returns the raw stream after the response header.
func (c *Client) hijack(ctx context.Context, p string, q url.Values, body any) (net.Conn, *bufio.Reader, *http.Response, error) {
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	var b []byte
	if body != nil {
		if b, err = json.Marshal(body); err != nil {
			conn.Close()
			return nil, nil, nil, err
		}
	}
	req := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: berth\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", apiPath(p, q), len(b))
	if _, err := conn.Write(append([]byte(req), b...)); err != nil {
		conn.Close()
		return nil, nil, nil, err
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		conn.Close()
		return nil, nil, nil, fmt.Errorf("POST %s: %w", p, err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols && resp.StatusCode != http.StatusOK {
		defer conn.Close()
		return nil, nil, nil, decodeError(resp)
	}
	return conn, br, resp, nil
}

// filtersParam encodes filters the way current Docker clients do.
func filtersParam(f map[string][]string) string {
	m := map[string]map[string]bool{}
	for k, vs := range f {
		m[k] = map[string]bool{}
		for _, v := range vs {
			m[k][v] = true
		}
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func (c *Client) loadInfo(ctx context.Context) (system.Info, error) {
	c.infoOnce.Do(func() {
		c.infoErr = c.doJSON(ctx, http.MethodGet, "/info", nil, nil, &c.info)
	})
	return c.info, c.infoErr
}

// Root is the daemon's store directory.
func (c *Client) Root() string {
	in, _ := c.loadInfo(context.Background())
	return in.DockerRootDir
}

// State is the daemon's runtime state directory.
func (c *Client) State() string {
	in, _ := c.loadInfo(context.Background())
	for _, l := range in.Labels {
		if v, ok := strings.CutPrefix(l, stateLabel); ok {
			return v
		}
	}
	return ""
}

// Driver is the daemon's snapshotter.
func (c *Client) Driver() string {
	in, _ := c.loadInfo(context.Background())
	return in.Driver
}

// Runtimes are the daemon's runtimes (name to executable) and its default.
func (c *Client) Runtimes() (map[string]string, string) {
	in, _ := c.loadInfo(context.Background())
	out := make(map[string]string, len(in.Runtimes))
	for name, r := range in.Runtimes {
		out[name] = r.Path
	}
	return out, in.DefaultRuntime
}

// stateLabel matches api.StateLabel (client may not import api).
const stateLabel = "io.berth.state-dir="
