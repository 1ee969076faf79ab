package archive

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"

	"github.com/klauspost/compress/gzip"

	"github.com/berth-dev/berth/internal/errdefs"
)

// DecompressLayer is Decompress for layer-sized streams: gzip goes through
// igzip (Intel ISA-L, Debian's isal package) when it is installed, as
// containerd does with igzip and unpigz. Inflate is most of the CPU a pull
// spends (klauspost's inflate runs at about zlib's speed; ISA-L's is about
// four times faster here), and on a machine with few CPUs that CPU is the
// pull's wall time. Spawning the process costs about a millisecond, so
// small streams should use Decompress.
//
// igzip only inflates: the caller still verifies every byte (the
// compressed digest before and the diff ID after), and size limits apply
// to what comes out. Set BERTH_IGZIP=0 to use the Go decoder always.
//
// Close stops the decoder and waits until it reads nothing more from r, so
// the caller may read r itself afterwards (to finish a digest).
func DecompressLayer(r io.Reader) (io.ReadCloser, Compression, error) {
	br := bufio.NewReaderSize(r, sniffSize)
	head, err := br.Peek(sniffSize)
	if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
		return nil, Uncompressed, fmt.Errorf("sniff compression: %w", err)
	}
	if !bytes.HasPrefix(head, gzipMagic) {
		return Decompress(br)
	}
	path := igzipPath()
	// A stream that ends within the head is too small to pay for a
	// process.
	if path == "" || len(head) < sniffSize || incompressible(head) {
		return Decompress(br)
	}
	rc, err := startInflate(path, br)
	if err != nil {
		// No process (a sandbox without fork, a vanished binary): br is
		// untouched yet, so the Go decoder takes over.
		return Decompress(br)
	}
	return rc, Gzip, nil
}

// sniffSize is how much of a stream DecompressLayer looks at first.
const sniffSize = 256 << 10

// incompressible reports a gzip stream whose start inflates to about its
// own size: deflate stored its blocks (already compressed files, random
// data). The Go decoder copies stored blocks at memory speed, where igzip
// would add four pipe copies of every byte and save no inflate work.
//
// Headers and the first files of a layer compress even when the rest does
// not: a stream counts as incompressible below a ratio of 1.25. Only the
// first incompressibleSample bytes are looked at, and inflating stops as
// soon as the ratio is reached: a compressible layer's whole head took 3
// to 4 ms of Go inflate per layer before its igzip could start, now about
// a tenth of that.
func incompressible(head []byte) bool {
	sample := head[:min(len(head), incompressibleSample)]
	zr, err := gzip.NewReader(bytes.NewReader(sample))
	if err != nil {
		return false // igzip will say what is wrong
	}
	enough := int64(len(sample)) * 5 / 4
	n, _ := io.CopyN(io.Discard, zr, enough) // or the sample's end, mid-stream
	return n < enough
}

// incompressibleSample is how much of a stream's head incompressible
// inflates at most.
const incompressibleSample = 64 << 10

var igzipPath = sync.OnceValue(func() string {
	if v := os.Getenv("BERTH_IGZIP"); v == "0" || v == "false" {
		return ""
	}
	p, err := exec.LookPath("igzip")
	if err != nil {
		return ""
	}
	return p
})

// inflateCmd is one igzip process: a goroutine feeds it the compressed
// stream through its stdin; Read reads its stdout directly (no io.Pipe
// copy on our side).
type inflateCmd struct {
	cmd    *exec.Cmd
	out    *os.File // read end of igzip's stdout
	in     *os.File // write end of igzip's stdin (the feeder closes it)
	stderr limitedBuffer

	stop     chan struct{}
	fed      chan struct{} // closed when the feeder returns
	feedErr  error         // set before fed closes
	finished bool          // the process was waited for
	err      error         // sticky result once finished
}

func startInflate(path string, src io.Reader) (_ *inflateCmd, retErr error) {
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("gzip: igzip: %w", err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, fmt.Errorf("gzip: igzip: %w", err)
	}
	// Bigger pipes: a 64 KiB pipe would switch between the three parties
	// every 64 KiB.
	growPipe(inW)
	growPipe(outW)
	c := &inflateCmd{out: outR, in: inW, stop: make(chan struct{}), fed: make(chan struct{})}
	// -d -c: decompress stdin to stdout. -T 1: one thread (the default on
	// decompression; said so that a future default cannot change our CPU).
	c.cmd = exec.Command(path, "-d", "-c", "-T", "1")
	c.cmd.Stdin, c.cmd.Stdout, c.cmd.Stderr = inR, outW, &c.stderr
	c.cmd.Env = []string{} // igzip needs nothing from ours
	err = c.cmd.Start()
	// The child holds its own copies of these ends now.
	inR.Close()
	outW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		return nil, fmt.Errorf("gzip: start %s: %w", path, err)
	}
	go c.feed(src)
	return c, nil
}

func (c *inflateCmd) feed(src io.Reader) {
	defer close(c.fed)
	defer c.in.Close()
	buf := make([]byte, 256<<10)
	for {
		select {
		case <-c.stop:
			return
		default:
		}
		n, rerr := src.Read(buf)
		if n > 0 {
			if _, werr := c.in.Write(buf[:n]); werr != nil {
				// igzip stopped reading: it ended (trailing bytes) or
				// failed; its exit status tells which.
				if !errors.Is(werr, syscall.EPIPE) {
					c.feedErr = werr
				}
				return
			}
		}
		if rerr == io.EOF {
			return
		}
		if rerr != nil {
			c.feedErr = rerr
			return
		}
	}
}

func (c *inflateCmd) Read(p []byte) (int, error) {
	if c.finished {
		return 0, c.err
	}
	n, err := c.out.Read(p)
	if err == nil || n > 0 {
		return n, nil
	}
	// End of igzip's output: it exited or is about to. The feeder ends
	// too (its next write fails if igzip left input unread).
	<-c.fed
	werr := c.cmd.Wait()
	c.finished = true
	c.out.Close()
	switch {
	case c.feedErr != nil: // the source failed: that is the news, not igzip's complaint
		c.err = c.feedErr
	case werr != nil:
		c.err = fmt.Errorf("gzip: %w: igzip: %v: %s", errdefs.ErrInvalidArgument, werr, strings.TrimSpace(c.stderr.String()))
	case err != io.EOF:
		c.err = fmt.Errorf("gzip: read igzip output: %w", err)
	default:
		c.err = io.EOF
	}
	return 0, c.err
}

// Close kills igzip if it is still running and waits until the feeder
// has stopped reading the source.
func (c *inflateCmd) Close() error {
	if c.finished {
		return nil
	}
	c.finished = true
	c.err = fmt.Errorf("gzip: read after close: %w", os.ErrClosed)
	close(c.stop)
	_ = c.cmd.Process.Kill()
	c.out.Close()
	// The kill closed igzip's stdin: a feeder blocked on writing fails
	// with EPIPE; one blocked on reading the source stops after that read.
	<-c.fed
	_ = c.cmd.Wait()
	return nil
}

// limitedBuffer keeps the first 4 KiB of igzip's stderr for error messages.
type limitedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := 4096 - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (b *limitedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
