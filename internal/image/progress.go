package image

import (
	"errors"
	"io"
	"sync"
	"time"
)

// progressSink serializes progress events from the layer goroutines.
type progressSink struct {
	mu sync.Mutex
	fn func(Progress)
}

func (p *progressSink) emit(id, action string, cur, total int64) {
	if p.fn == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fn(Progress{ID: id, Action: action, Current: cur, Total: total})
}

// reader reports "Downloading" as r is read, at most every 100ms (a
// terminal redraws no faster, and a callback per 32 KiB read would cost
// more than the read).
func (p *progressSink) reader(r io.Reader, id string, total int64) io.Reader {
	if p.fn == nil {
		return r
	}
	return &progressReader{r: r, p: p, id: id, total: total}
}

type progressReader struct {
	r     io.Reader
	p     *progressSink
	id    string
	n     int64
	total int64
	last  time.Time
	done  bool // the last event (at EOF) is sent
}

func (pr *progressReader) Read(b []byte) (int, error) {
	n, err := pr.r.Read(b)
	pr.n += int64(n)
	if pr.done {
		return n, err
	}
	end := errors.Is(err, io.EOF)
	if now := time.Now(); now.Sub(pr.last) >= 100*time.Millisecond || end {
		pr.last = now
		pr.done = end
		pr.p.emit(pr.id, "Downloading", pr.n, pr.total)
	}
	return n, err
}
