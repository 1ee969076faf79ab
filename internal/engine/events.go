package engine

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/moby/moby/api/types/events"
	"golang.org/x/sys/unix"
)

// The event log is one file of JSON lines (Docker's events.Message) under
// the root, appended by every berth process. Lines are written with one
// write(2) on an O_APPEND file, which the kernel keeps whole against
// concurrent appenders, so no lock is needed. It is trimmed to its newer
// half when it grows past maxEventLog.
const maxEventLog = 4 << 20

func (e *Engine) eventLog() string { return filepath.Join(e.opts.Root, "events.log") }

// emit appends an event; failures are ignored (events are advisory).
func (e *Engine) emit(typ events.Type, action events.Action, c *Container, attrs map[string]string) {
	now := time.Now()
	a := map[string]string{}
	if c != nil {
		a["name"] = c.Name
		a["image"] = c.ImageRef
		for k, v := range c.Config.Labels {
			a[k] = v
		}
	}
	for k, v := range attrs {
		a[k] = v
	}
	msg := events.Message{Type: typ, Action: action, Scope: "local", Time: now.Unix(), TimeNano: now.UnixNano(),
		Actor: events.Actor{Attributes: a}}
	if c != nil {
		msg.Actor.ID = c.ID
	}
	e.appendEvent(msg)
}

func (e *Engine) appendEvent(msg events.Message) {
	b, err := json.Marshal(msg)
	if err != nil {
		return
	}
	f, err := os.OpenFile(e.eventLog(), os.O_WRONLY|os.O_APPEND|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return
	}
	defer f.Close()
	_, _ = f.Write(append(b, '\n'))
	if fi, err := f.Stat(); err == nil && fi.Size() > maxEventLog {
		e.trimEvents()
	}
}

// trimEvents keeps the newer half of the log (under the containers lock,
// replacing the file atomically; an append racing the rename is lost,
// which is acceptable for an advisory log).
func (e *Engine) trimEvents() {
	unlock, err := e.lockContainers()
	if err != nil {
		return
	}
	defer unlock()
	b, err := os.ReadFile(e.eventLog())
	if err != nil || len(b) <= maxEventLog {
		return
	}
	b = b[len(b)/2:]
	if i := strings.IndexByte(string(b), '\n'); i >= 0 {
		b = b[i+1:]
	}
	_ = writeFileAtomic(e.eventLog(), b, 0o600)
}

// Events calls fn for each matching event, oldest first.
func (e *Engine) Events(ctx context.Context, opts EventsOptions, fn func(events.Message) error) error {
	f, err := os.OpenFile(e.eventLog(), os.O_RDONLY|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	defer func() { f.Close() }()
	r := bufio.NewReader(f)
	var partial []byte
	for {
		line, err := r.ReadBytes('\n')
		if err == io.EOF {
			partial = append(partial, line...)
			if !opts.Follow || (!opts.Until.IsZero() && time.Now().After(opts.Until)) {
				return nil
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(100 * time.Millisecond):
			}
			// A trim replaced the file: continue in the new one.
			if st, err1 := os.Stat(e.eventLog()); err1 == nil {
				if cur, err2 := f.Stat(); err2 == nil && !os.SameFile(st, cur) {
					f.Close()
					if f, err = os.Open(e.eventLog()); err != nil {
						return err
					}
					r.Reset(f)
					partial = nil
				}
			}
			continue
		}
		if err != nil {
			return err
		}
		line = append(partial, line...)
		partial = nil
		var msg events.Message
		if json.Unmarshal(line, &msg) != nil {
			continue
		}
		t := time.Unix(0, msg.TimeNano)
		if !opts.Since.IsZero() && t.Before(opts.Since) {
			continue
		}
		if !opts.Until.IsZero() && t.After(opts.Until) {
			return nil
		}
		if opts.Filter != nil && !opts.Filter(msg) {
			continue
		}
		if err := fn(msg); err != nil {
			return err
		}
	}
}
