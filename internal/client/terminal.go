package client

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"strconv"

	"golang.org/x/term"
)

// ExecResize sets the terminal size of a Tty exec (POST
// /exec/{id}/resize), running or not started yet.
func (c *Client) ExecResize(ctx context.Context, execID string, height, width uint) error {
	q := url.Values{"h": {strconv.FormatUint(uint64(height), 10)}, "w": {strconv.FormatUint(uint64(width), 10)}}
	return c.doJSON(ctx, http.MethodPost, "/exec/"+url.PathEscape(execID)+"/resize", q, nil, nil)
}

// Terminal returns the first of streams (our stdin, stdout, ...) that is a
// terminal, nil when none is. The CLI and this client both ask it which
// terminal's size a container's terminal follows.
func Terminal(streams ...any) *os.File {
	for _, s := range streams {
		if f, ok := s.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			return f
		}
	}
	return nil
}

// TerminalSize is Docker's [height, width] of a terminal, nil when unknown.
func TerminalSize(f *os.File) *[2]uint {
	w, h, err := term.GetSize(int(f.Fd()))
	if err != nil || w <= 0 || h <= 0 {
		return nil
	}
	return &[2]uint{uint(h), uint(w)}
}

// RawTerminal puts the terminal f in raw mode (no echo, no line editing,
// ctrl-c a byte rather than a signal: all of that is the container's
// terminal's to do) and returns the function that restores it. A terminal
// that refuses is left as it is.
func RawTerminal(f *os.File) (restore func()) {
	st, err := term.MakeRaw(int(f.Fd()))
	if err != nil {
		return func() {}
	}
	return func() { _ = term.Restore(int(f.Fd()), st) }
}

// execTerminal does over the API what berth-runtime does for a local
// `exec -t` on a terminal: our terminal in raw mode while the exec runs
// (ctrl-c travels to the container as a byte), and its size sent to the
// exec's terminal at every change. It returns the function that undoes
// both.
func (c *Client) execTerminal(ctx context.Context, execID string, tf *os.File, raw bool) (stop func()) {
	restore := func() {}
	if raw {
		restore = RawTerminal(tf)
	}
	send := func() {
		if sz := TerminalSize(tf); sz != nil {
			_ = c.ExecResize(ctx, execID, sz[0], sz[1])
		}
	}
	unwatch := WatchResize(send)
	return func() {
		unwatch()
		restore()
	}
}
