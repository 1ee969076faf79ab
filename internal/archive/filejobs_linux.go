package archive

import (
	"archive/tar"
	"fmt"
	"io"
	"sync"
)

// A layer's small files are finished off the tar-reading goroutine. Most of
// an unpack's time is the kernel creating files, and one goroutine doing
// all of it uses one CPU however many are idle: an image of one layer (most
// base images) or the last layer of a pull would unpack at single-core
// speed. So the reader keeps everything that decides names and order —
// parsing, containment, creating the inode with O_EXCL|O_NOFOLLOW in the
// resolved parent — and hands the open descriptor with the file's bytes to
// a writer goroutine, which writes them, sets owner, mode, xattrs and times
// through that descriptor and closes it. A writer only ever touches the
// inode the reader created, so nothing it does depends on or changes what
// a name resolves to. A later entry that replaces or whiteouts the name
// unlinks that inode; the writer then finishes a file nobody can see,
// which is harmless. Apply waits for every writer before it sets the
// directories' times and returns.

const (
	// smallFile is the largest file handed to a writer: its bytes are
	// copied into a buffer the writer owns. Bigger files are written by
	// the reader straight from the tar stream, where one big write per
	// MiB is already cheap per byte.
	smallFile = 256 << 10
	// fileWriterCount writers per Apply; with the reader that is three
	// goroutines creating and filling files, enough to keep two CPUs busy.
	fileWriterCount = 2
	// fileJobQueue bounds the files read ahead of the writers (and so the
	// buffers in flight per Apply).
	fileJobQueue = 8
)

// fileBufs pools the writers' buffers in two sizes: most layer files are a
// few KiB, and a 256 KiB buffer for each would multiply what is in flight.
var fileBufs = [2]sync.Pool{
	{New: func() any { b := make([]byte, 16<<10); return &b }},
	{New: func() any { b := make([]byte, smallFile); return &b }},
}

func fileBufClass(size int64) int {
	if size <= 16<<10 {
		return 0
	}
	return 1
}

type fileJob struct {
	fd    int
	name  string
	hdr   *tar.Header
	owned bool
	buf   *[]byte
	n     int
}

// fileWriters runs one Apply's writers.
type fileWriters struct {
	a    *applier
	jobs chan fileJob
	wg   sync.WaitGroup
	mu   sync.Mutex
	err  error // the first writer failure
}

func newFileWriters(a *applier) *fileWriters {
	w := &fileWriters{a: a, jobs: make(chan fileJob, fileJobQueue)}
	w.wg.Add(fileWriterCount)
	for range fileWriterCount {
		go w.run()
	}
	return w
}

// submit reads the entry's bytes from tr and queues the rest of its work.
// fd becomes the writers' to close, whatever happens.
func (w *fileWriters) submit(fd int, name string, hdr *tar.Header, owned bool, tr io.Reader) error {
	class := fileBufClass(hdr.Size)
	bp := fileBufs[class].Get().(*[]byte)
	n, err := io.ReadFull(tr, (*bp)[:hdr.Size])
	if err != nil {
		fileBufs[class].Put(bp)
		w.a.ops.close(fd)
		return fmt.Errorf("write %s: %w", name, err)
	}
	w.jobs <- fileJob{fd: fd, name: name, hdr: hdr, owned: owned, buf: bp, n: n}
	return nil
}

// failed reports the first writer failure so far.
func (w *fileWriters) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// wait stops the writers once the queue is empty and reports the first
// failure.
func (w *fileWriters) wait() error {
	close(w.jobs)
	w.wg.Wait()
	return w.err
}

func (w *fileWriters) run() {
	defer w.wg.Done()
	for j := range w.jobs {
		err := w.finish(j)
		w.a.ops.close(j.fd)
		fileBufs[fileBufClass(j.hdr.Size)].Put(j.buf)
		if err != nil {
			w.mu.Lock()
			if w.err == nil {
				w.err = err
			}
			w.mu.Unlock()
		}
	}
}

func (w *fileWriters) finish(j fileJob) error {
	if w.failed() != nil {
		return nil // Apply fails anyway: spare the work
	}
	if _, err := (fdWriter{j.fd, w.a.ops}).Write((*j.buf)[:j.n]); err != nil {
		return fmt.Errorf("entry %q: write: %w", j.hdr.Name, err)
	}
	if err := w.a.meta(j.fd, j.name, j.hdr, j.owned); err != nil {
		return fmt.Errorf("entry %q: %w", j.hdr.Name, err)
	}
	if err := w.a.setTimesFd(j.fd, j.name, accessTime(j.hdr), j.hdr.ModTime); err != nil {
		return fmt.Errorf("entry %q: %w", j.hdr.Name, err)
	}
	return nil
}
