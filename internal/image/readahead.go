package image

import (
	"io"
	"sync"
)

// readAhead reads src in a goroutine of its own, up to a given number of
// chunks ahead of the consumer. A layer then moves through two stages at
// once: receiving (network, the content ingest's write and digest) and
// unpacking (decompression, the diff ID digest, file creation), instead of
// one stalling the other.
type readAhead struct {
	src   io.ReadCloser
	sink  io.Writer // gets each chunk before the consumer (nil: none)
	full  chan []byte
	free  chan []byte
	stop  chan struct{}
	done  chan struct{}
	err   error // set by the reader goroutine before it closes full
	cur   []byte
	chunk []byte // the buffer cur points into, returned to free when used
	once  sync.Once
}

const (
	readAheadChunk = 256 << 10
	// receiveChunks buffer the network: 2 MiB lets a fast registry run
	// ahead while the unpack is busy with a burst of small files.
	receiveChunks = 8
	// inflateChunks only decouple inflate from file creation, which take
	// turns at being the slower one every few files: 1 MiB is enough, and
	// it is paid per layer in flight.
	inflateChunks = 4
)

// newReadAhead starts reading src. sink, when not nil, gets every chunk
// once it is read, before the consumer sees it: one write per chunk (a
// quarter MiB) where an io.TeeReader would write once per read from src —
// per network read, a few KiB.
func newReadAhead(src io.ReadCloser, chunks int, sink io.Writer) *readAhead {
	ra := &readAhead{
		src:  src,
		sink: sink,
		full: make(chan []byte, chunks),
		free: make(chan []byte, chunks+1),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	go ra.fill()
	return ra
}

func (ra *readAhead) fill() {
	defer close(ra.done)
	defer close(ra.full)
	for {
		select {
		case <-ra.stop: // Close: read nothing more from src
			ra.err = io.ErrClosedPipe
			return
		default:
		}
		var buf []byte
		select {
		case buf = <-ra.free:
		default:
			buf = make([]byte, readAheadChunk)
		}
		n, err := io.ReadFull(ra.src, buf[:cap(buf)])
		if n > 0 && ra.sink != nil {
			if _, werr := ra.sink.Write(buf[:n]); werr != nil {
				ra.err = werr
				return
			}
		}
		if n > 0 {
			select {
			case ra.full <- buf[:n]:
			case <-ra.stop:
				ra.err = io.ErrClosedPipe
				return
			}
		}
		if err == io.ErrUnexpectedEOF {
			err = io.EOF
		}
		if err != nil {
			ra.err = err
			return
		}
	}
}

func (ra *readAhead) Read(p []byte) (int, error) {
	if len(ra.cur) == 0 {
		if ra.chunk != nil {
			select {
			case ra.free <- ra.chunk[:cap(ra.chunk)]:
			default: // the reader has finished; let the buffer go
			}
			ra.chunk = nil
		}
		buf, ok := <-ra.full
		if !ok {
			return 0, ra.err // full is closed only after err is set (or on stop)
		}
		ra.chunk, ra.cur = buf, buf
	}
	n := copy(p, ra.cur)
	ra.cur = ra.cur[n:]
	return n, nil
}

// Buffered reports the bytes Read can return without waiting: the
// consumer (archive.Apply) then reads it directly, without a buffer of
// its own.
func (ra *readAhead) Buffered() int { return len(ra.cur) }

// Close stops the reader goroutine and waits for it, so that nothing
// writes to the ingest behind the caller's back afterwards. Closing src
// first unblocks a read stuck on the network.
func (ra *readAhead) Close() error {
	var err error
	ra.once.Do(func() {
		close(ra.stop)
		err = ra.src.Close()
		<-ra.done
	})
	return err
}
