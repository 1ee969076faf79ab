package client

import (
	"context"
	"io"
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

// localTerminal returns the terminal among our stdin and stdout (stdin
// first), the one whose size a Tty exec follows; nil when neither is one.
func localTerminal(stdin io.Reader, stdout io.Writer) *os.File {
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return f
	}
	if f, ok := stdout.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return f
	}
	return nil
}

// terminalSize is Docker's [height, width] of a terminal, nil when unknown.
func terminalSize(f *os.File) *[2]uint {
	w, h, err := term.GetSize(int(f.Fd()))
	if err != nil || w <= 0 || h <= 0 {
		return nil
	}
	return &[2]uint{uint(h), uint(w)}
}

// execTerminal does over the API what berth-runtime does for a local
// `exec -t` on a terminal: our terminal in raw mode while the exec runs
// (ctrl-c travels to the container as a byte), and its size sent to the
// exec's terminal at every change. It returns the function that undoes
// both.
func (c *Client) execTerminal(ctx context.Context, execID string, tf *os.File, raw bool) (stop func()) {
	restore := func() {}
	if raw {
		if st, err := term.MakeRaw(int(tf.Fd())); err == nil {
			restore = func() { _ = term.Restore(int(tf.Fd()), st) }
		}
	}
	send := func() {
		if sz := terminalSize(tf); sz != nil {
			_ = c.ExecResize(ctx, execID, sz[0], sz[1])
		}
	}
	unwatch := watchResize(send)
	return func() {
		unwatch()
		restore()
	}
}
