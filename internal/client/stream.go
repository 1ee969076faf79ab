package client

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strings"

	"github.com/berth-dev/berth/internal/enginetypes"
	"github.com/moby/moby/api/pkg/stdcopy"
)

const multiplexed = "application/vnd.docker.multiplexed-stream"

// stream pumps one hijacked attach or exec connection: output to the
// caller's writers, the caller's input to the connection.
type stream struct {
	conn net.Conn
	out  chan error
	// detaching is closed once the detach keys were typed, before they go
	// on to the daemon; detached once they went (closing conn earlier
	// would cut them off, and the daemon would see a hang-up instead).
	detaching, detached chan struct{}
}

func startStream(conn net.Conn, br *bufio.Reader, tty bool, stdin io.Reader, stdout, stderr io.Writer, keys []byte) *stream {
	s := &stream{conn: conn, out: make(chan error, 1), detaching: make(chan struct{}), detached: make(chan struct{})}
	go func() { s.out <- copyOutput(br, tty, stdout, stderr) }()
	if stdin != nil {
		go func() {
			if copyInput(conn, stdin, keys, func() { close(s.detaching) }) {
				close(s.detached)
				return
			}
			// End of our input: half-close, so the container's stdin
			// reaches EOF while its output keeps coming.
			if cw, ok := conn.(interface{ CloseWrite() error }); ok {
				_ = cw.CloseWrite()
			}
		}()
	}
	return s
}

// wait returns when the output ends (nil), the user typed the detach keys
// (enginetypes.ErrDetached) or ctx ends.
func (s *stream) wait(ctx context.Context) error {
	select {
	case err := <-s.out:
		// The daemon ends the stream when the detach keys reach it, which
		// may be before the select sees detached: an output that ended
		// after detaching began ended because of it.
		select {
		case <-s.detaching:
			<-s.detached
			return enginetypes.ErrDetached
		default:
		}
		if errors.Is(err, net.ErrClosed) {
			err = nil
		}
		return err
	case <-s.detached:
		return enginetypes.ErrDetached
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *stream) close() { s.conn.Close() }

// copyOutput copies a raw terminal stream, or demultiplexes Docker's
// stdcopy frames into stdout and stderr.
func copyOutput(r io.Reader, raw bool, stdout, stderr io.Writer) error {
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	var err error
	if raw {
		_, err = io.Copy(stdout, r)
	} else {
		_, err = stdcopy.StdCopy(stdout, stderr, r)
	}
	return err
}

// copyInput forwards in to w until EOF or the detach keys (reported true;
// onDetach runs before the keys are sent on); bytes of a partial key
// sequence are sent once it stops matching.
func copyInput(w io.Writer, in io.Reader, keys []byte, onDetach func()) (detached bool) {
	buf := make([]byte, 32<<10)
	matched := 0
	for {
		n, err := in.Read(buf)
		if n > 0 {
			out := make([]byte, 0, n+len(keys))
			for _, b := range buf[:n] {
				if len(keys) > 0 && b == keys[matched] {
					matched++
					if matched == len(keys) {
						// The keys go on to the daemon too: its attach
						// detaches there, leaving the container's stdin
						// open (a bare hang-up would close it).
						onDetach()
						_, _ = w.Write(append(out, keys...))
						return true
					}
					continue
				}
				if matched > 0 {
					out = append(out, keys[:matched]...)
					matched = 0
				}
				out = append(out, b)
			}
			if len(out) > 0 {
				if _, werr := w.Write(out); werr != nil {
					return false
				}
			}
		}
		if err != nil {
			return false
		}
	}
}

// detachKeysParam writes keys in Docker's notation ("ctrl-p,ctrl-q").
func detachKeysParam(keys []byte) string {
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		switch {
		case k == 0:
			parts = append(parts, "ctrl-@")
		case k >= 1 && k <= 26:
			parts = append(parts, "ctrl-"+string(rune('a'+k-1)))
		case k >= 27 && k <= 31:
			parts = append(parts, "ctrl-"+string(rune('['+k-27)))
		default:
			parts = append(parts, string(rune(k)))
		}
	}
	return strings.Join(parts, ",")
}
