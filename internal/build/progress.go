package build

import (
	"bytes"
	"fmt"
	"io"
	"sync"
	"time"
)

// progress prints BuildKit's plain format: "#N <step>", the step's output
// prefixed with "#N ", then "#N CACHED" or "#N DONE 0.2s". Parallel stages
// share it, so every write holds the lock.
type progress struct {
	mu sync.Mutex
	w  io.Writer // nil: quiet
	n  int
}

func (p *progress) start(format string, args ...any) *stepLog {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n++
	s := &stepLog{p: p, id: p.n, start: time.Now()}
	if p.w != nil {
		fmt.Fprintf(p.w, "#%d %s\n", s.id, fmt.Sprintf(format, args...))
	}
	return s
}

// stepLog is one step's output: it goes to the progress writer line by line
// and the tail is kept for the error of a failing RUN.
type stepLog struct {
	p     *progress
	id    int
	start time.Time
	line  []byte
	tail  []byte
}

const tailMax = 8 << 10

func (s *stepLog) Write(b []byte) (int, error) {
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	s.tail = append(s.tail, b...)
	if len(s.tail) > tailMax {
		s.tail = s.tail[len(s.tail)-tailMax:]
	}
	if s.p.w == nil {
		return len(b), nil
	}
	s.line = append(s.line, b...)
	for {
		i := bytes.IndexByte(s.line, '\n')
		if i < 0 {
			break
		}
		fmt.Fprintf(s.p.w, "#%d %s\n", s.id, s.line[:i])
		s.line = s.line[i+1:]
	}
	return len(b), nil
}

func (s *stepLog) flush() {
	if s.p.w != nil && len(s.line) > 0 {
		fmt.Fprintf(s.p.w, "#%d %s\n", s.id, s.line)
		s.line = nil
	}
}

func (s *stepLog) done(cached bool, err error) {
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	s.flush()
	if s.p.w == nil {
		return
	}
	switch {
	case err != nil:
		fmt.Fprintf(s.p.w, "#%d ERROR: %v\n", s.id, err)
	case cached:
		fmt.Fprintf(s.p.w, "#%d CACHED\n", s.id)
	default:
		fmt.Fprintf(s.p.w, "#%d DONE %.1fs\n", s.id, time.Since(s.start).Seconds())
	}
}

func (p *progress) printf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.w != nil {
		fmt.Fprintf(p.w, format, args...)
	}
}
