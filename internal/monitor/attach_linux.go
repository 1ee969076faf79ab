package monitor

import (
	"encoding/binary"
	"io"
	"os"
	"sync"
	"time"
)

// Stream numbers of Docker's stdcopy framing.
const (
	streamStdout = 1
	streamStderr = 2
)

// clientWriteTimeout bounds how long one attached client that stopped
// reading can hold up the container's output (and everyone else's copy).
// Such a client is dropped; the log never waits for clients.
const clientWriteTimeout = 5 * time.Second

// hub fans the output of the running instance out to attach.sock clients
// and feeds their input to its stdin. Clients belong to one instance: when
// it exits (and its output is drained) every client is closed, which is how
// attach ends.
type hub struct {
	mu       sync.Mutex
	tty      bool
	open     bool // an instance runs: new clients are accepted
	clients  map[*os.File]struct{}
	stdin    *os.File      // the instance's stdin (pipe or pty master); nil without --stdin
	stdinTTY bool          // stdin is the pty master: never closed by a client
	first    chan struct{} // closed when the first client of an instance connects
}

func newHub(tty bool) *hub {
	return &hub{tty: tty, clients: make(map[*os.File]struct{})}
}

// begin opens the hub for a new instance.
func (h *hub) begin(stdin *os.File, stdinTTY bool) {
	h.mu.Lock()
	h.open, h.stdin, h.stdinTTY = true, stdin, stdinTTY
	h.first = make(chan struct{})
	h.mu.Unlock()
}

// end closes every client and the stdin writer of the instance.
func (h *hub) end() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.open = false
	for c := range h.clients {
		c.Close()
	}
	clear(h.clients)
	if h.stdin != nil && !h.stdinTTY {
		h.stdin.Close()
	}
	h.stdin = nil
}

// serve takes a new attach connection: it gets output from now on, and its
// input goes to stdin until it half-closes.
func (h *hub) serve(c *os.File) {
	h.mu.Lock()
	if !h.open {
		h.mu.Unlock()
		c.Close()
		return
	}
	h.clients[c] = struct{}{}
	first := len(h.clients) == 1
	ch := h.first
	stdin := h.stdin
	h.mu.Unlock()
	if first && ch != nil {
		select {
		case <-ch:
		default:
			close(ch)
		}
	}
	go h.forwardInput(c, stdin)
}

func (h *hub) forwardInput(c, stdin *os.File) {
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if n > 0 && stdin != nil {
			if _, werr := stdin.Write(buf[:n]); werr != nil {
				stdin = nil
			}
		}
		if err != nil {
			break
		}
	}
	// EOF: the client half-closed (or hung up). Like `docker run -i`
	// (StdinOnce) that closes the container's stdin; a pty has no EOF to
	// give, its master stays open for the other clients.
	h.mu.Lock()
	if h.stdin != nil && h.stdin == stdin && !h.stdinTTY {
		h.stdin.Close()
		h.stdin = nil
	}
	h.mu.Unlock()
}

// broadcast sends p to every client: raw with a tty, else in a stdcopy
// frame for stream.
func (h *hub) broadcast(stream byte, p []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.clients) == 0 {
		return
	}
	var hdr [8]byte
	hdr[0] = stream
	binary.BigEndian.PutUint32(hdr[4:], uint32(len(p)))
	deadline := time.Now().Add(clientWriteTimeout)
	for c := range h.clients {
		_ = c.SetWriteDeadline(deadline)
		var err error
		if !h.tty {
			_, err = c.Write(hdr[:])
		}
		if err == nil {
			_, err = c.Write(p)
		}
		if err != nil {
			c.Close()
			delete(h.clients, c)
		}
	}
}

// waitFirst blocks until a client attached to the current instance, or
// timeout passes.
func (h *hub) waitFirst(timeout time.Duration) bool {
	h.mu.Lock()
	ch := h.first
	h.mu.Unlock()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-t.C:
		return false
	}
}

// copyOutput reads one output stream of the instance until EOF (or EIO, a
// pty whose other side is gone) and sends it to the log and the clients.
func copyOutput(r io.Reader, stream byte, log *lineSplitter, h *hub) {
	buf := make([]byte, 8192)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			h.broadcast(stream, buf[:n])
			_, _ = log.Write(buf[:n])
		}
		if err != nil {
			break
		}
	}
	log.flush()
}
