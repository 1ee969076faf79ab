package monitor

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// maxLogLine is where Docker's log copier cuts a line without a newline into
// partial messages (daemon/logger/copier.go: 16 KiB). A partial message is
// written without the trailing "\n", which is how readers join them back.
const maxLogLine = 16 * 1024

// jsonLog writes Docker's json-file log format, one object per line:
//
//	{"log":"hello\n","stream":"stdout","time":"2024-01-02T03:04:05.123456789Z"}
//
// and rotates like Docker's LogFile: before a write, a file that has reached
// maxSize is renamed to .1 (.1 to .2, …, keeping maxFile files in all). One
// mutex orders all writers, so no entry is lost or interleaved across a
// rotation.
type jsonLog struct {
	mu      sync.Mutex
	path    string
	f       *os.File
	size    int64
	maxSize int64 // 0: never rotate
	maxFile int   // files kept, counting the live one (>= 1)
	buf     []byte
}

func openJSONLog(path string, maxSize int64, maxFile int) (*jsonLog, error) {
	if maxFile < 1 {
		maxFile = 1
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, wrap("open log", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, wrap("open log", err)
	}
	return &jsonLog{path: path, f: f, size: fi.Size(), maxSize: maxSize, maxFile: maxFile}, nil
}

// write logs one message. partial messages (a line cut at maxLogLine or the
// unterminated tail at EOF) are passed without their "\n" by the caller.
func (l *jsonLog) write(stream string, msg []byte, t time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return errors.New("log closed")
	}
	if l.maxSize > 0 && l.size >= l.maxSize {
		if err := l.rotate(); err != nil {
			return err
		}
	}
	b := append(l.buf[:0], `{"log":`...)
	b = appendJSONString(b, msg)
	b = append(b, `,"stream":"`...)
	b = append(b, stream...)
	b = append(b, `","time":"`...)
	b = t.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, "\"}\n"...)
	n, err := l.f.Write(b)
	l.size += int64(n)
	// Keep a modest buffer between writes; a burst of 16 KiB lines would
	// otherwise pin its largest encoding for the container's lifetime.
	if cap(b) <= 4096 {
		l.buf = b
	} else {
		l.buf = nil
	}
	return err
}

func (l *jsonLog) rotate() error {
	if l.maxFile == 1 {
		if err := l.f.Truncate(0); err != nil {
			return wrap("rotate log", err)
		}
		l.size = 0
		return nil
	}
	for i := l.maxFile - 1; i > 1; i-- {
		err := os.Rename(l.path+"."+strconv.Itoa(i-1), l.path+"."+strconv.Itoa(i))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return wrap("rotate log", err)
		}
	}
	if err := os.Rename(l.path, l.path+".1"); err != nil {
		return wrap("rotate log", err)
	}
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return wrap("rotate log", err)
	}
	l.f.Close()
	l.f, l.size = f, 0
	return nil
}

func (l *jsonLog) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// lineSplitter turns a byte stream into log messages the way Docker's copier
// does: one per "\n"-terminated line, lines longer than maxLogLine cut into
// partial messages, and an unterminated tail flushed as partial at EOF.
type lineSplitter struct {
	stream string
	log    *jsonLog
	buf    []byte // pending bytes of the current line, < maxLogLine
}

func (s *lineSplitter) Write(p []byte) (int, error) {
	n := len(p)
	now := time.Now()
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			room := maxLogLine - len(s.buf)
			if len(p) < room {
				s.buf = append(s.buf, p...)
				break
			}
			s.emit(append(s.buf, p[:room]...), now)
			p = p[room:]
			continue
		}
		line := p[:i+1]
		if len(s.buf)+len(line) > maxLogLine {
			// Too long even with its newline: cut as Docker does.
			room := maxLogLine - len(s.buf)
			s.emit(append(s.buf, p[:room]...), now)
			p = p[room:]
			continue
		}
		if len(s.buf) == 0 {
			s.emit(line, now)
		} else {
			s.emit(append(s.buf, line...), now)
		}
		p = p[i+1:]
	}
	return n, nil
}

func (s *lineSplitter) emit(msg []byte, t time.Time) {
	_ = s.log.write(s.stream, msg, t)
	s.buf = s.buf[:0]
	if cap(s.buf) > 4096 {
		s.buf = nil
	}
}

// flush logs an unterminated last line (EOF).
func (s *lineSplitter) flush() {
	if len(s.buf) > 0 {
		s.emit(s.buf, time.Now())
	}
}

// appendJSONString appends s as a JSON string, escaped as encoding/json
// does (HTML-safe, invalid UTF-8 as U+FFFD), without its reflection cost on
// every log line.
func appendJSONString(b, s []byte) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
