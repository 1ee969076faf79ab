package cli

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/engine"
	"github.com/docker/go-units"
)

// progressWriter renders per-layer events the way the Docker CLI does: on a
// terminal one line per layer, redrawn in place with a bar; otherwise one
// line per change of status (no byte counts), so logs stay readable.
type progressWriter struct {
	mu     sync.Mutex
	out    io.Writer
	tty    bool
	quiet  bool
	order  []string
	lines  map[string]string
	status map[string]string
	drawn  int
	last   time.Time
}

func newProgress(out io.Writer, tty, quiet bool) *progressWriter {
	return &progressWriter{out: out, tty: tty, quiet: quiet, lines: map[string]string{}, status: map[string]string{}}
}

// Event takes one engine event.
func (p *progressWriter) Event(ev engine.Event) {
	if p.quiet {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if ev.ID == "" {
		// A line of its own ("<tag>: Pulling from …" between the tags of
		// pull -a): the layers so far are finished, and the next ones
		// are drawn below it.
		if p.tty && len(p.order) > 0 {
			p.redraw()
		}
		fmt.Fprintln(p.out, ev.Status)
		clear(p.lines)
		clear(p.status)
		p.order, p.drawn = nil, 0
		return
	}
	if _, ok := p.lines[ev.ID]; !ok {
		p.order = append(p.order, ev.ID)
	}
	text := ev.Status
	if ev.Total > 0 && ev.UnderWay() {
		text = ev.Status + " " + bar(ev.Current, ev.Total)
	}
	p.lines[ev.ID] = text
	if !p.tty {
		if p.status[ev.ID] != ev.Status {
			p.status[ev.ID] = ev.Status
			fmt.Fprintf(p.out, "%s: %s\n", ev.ID, ev.Status)
		}
		return
	}
	// Redraw at most every 100 ms unless the status itself changed.
	changed := p.status[ev.ID] != ev.Status
	p.status[ev.ID] = ev.Status
	if !changed && time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.redraw()
}

func (p *progressWriter) redraw() {
	p.last = time.Now()
	var b strings.Builder
	if p.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", p.drawn)
	}
	for _, id := range p.order {
		fmt.Fprintf(&b, "\x1b[2K%s: %s\n", id, p.lines[id])
	}
	p.drawn = len(p.order)
	io.WriteString(p.out, b.String())
}

// Done draws the final state.
func (p *progressWriter) Done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && !p.quiet && len(p.order) > 0 {
		p.redraw()
	}
}

// bar is Docker's "[=====>     ]  1.2MB/3.4MB".
func bar(cur, total int64) string {
	const width = 50
	if cur > total {
		cur = total
	}
	n := int(float64(width) * float64(cur) / float64(total))
	s := strings.Repeat("=", n)
	if n < width {
		s += ">" + strings.Repeat(" ", width-n-1)
	}
	return fmt.Sprintf("[%s] %8s/%s", s, humanSize(cur), humanSize(total))
}

// humanSize formats bytes like Docker (decimal units, 3 significant digits).
func humanSize(n int64) string { return units.HumanSizeWithPrecision(float64(n), 3) }
