package engine

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"
)

// logEntry is one line of Docker's json-file log driver.
type logEntry struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
}

// logFiles lists the log and its rotations, oldest first (Docker's
// naming: NAME.N is older than NAME.N-1, NAME is the live file).
func logFiles(path string) []string {
	var rotated []string
	for i := 1; ; i++ {
		p := path + "." + strconv.Itoa(i)
		if _, err := os.Stat(p); err != nil {
			break
		}
		rotated = append([]string{p}, rotated...)
	}
	return append(rotated, path)
}

// Logs writes the container's logged output. With Follow it keeps
// following the live file (across rotations) until the container stops
// or ctx ends.
func (e *Engine) Logs(ctx context.Context, ref string, opts LogsOptions, stdout, stderr io.Writer) error {
	c, err := e.lookupContainer(ref)
	if err != nil {
		return err
	}
	if !opts.Stdout && !opts.Stderr {
		opts.Stdout, opts.Stderr = true, true
	}
	emit := func(le *logEntry) error {
		if !opts.Since.IsZero() && le.Time.Before(opts.Since) {
			return nil
		}
		if !opts.Until.IsZero() && le.Time.After(opts.Until) {
			return nil
		}
		w := stdout
		if le.Stream == "stderr" {
			if !opts.Stderr {
				return nil
			}
			w = stderr
		} else if !opts.Stdout {
			return nil
		}
		if opts.Timestamps {
			if _, err := io.WriteString(w, le.Time.Format(time.RFC3339Nano)+" "); err != nil {
				return err
			}
		}
		_, err := io.WriteString(w, le.Log)
		return err
	}
	path := e.logPath(c.ID)
	files := logFiles(path)
	var entries []logEntry
	var offset int64
	for i, p := range files {
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		n, err := readEntries(f, func(le logEntry) error { entries = append(entries, le); return nil })
		f.Close()
		if err != nil {
			return fmt.Errorf("logs %s: %w", c.Name, err)
		}
		if i == len(files)-1 {
			offset = n
		}
	}
	if opts.Tail >= 0 && len(entries) > opts.Tail {
		entries = entries[len(entries)-opts.Tail:]
	}
	for i := range entries {
		if err := emit(&entries[i]); err != nil {
			return err
		}
	}
	if !opts.Follow {
		return nil
	}
	return e.followLog(ctx, c, path, offset, func(le logEntry) error { return emit(&le) })
}

// readEntries decodes complete lines from r and returns the offset after
// the last complete line (a line being written is left for the next read).
func readEntries(r io.Reader, fn func(logEntry) error) (int64, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var n int64
	for {
		line, err := br.ReadBytes('\n')
		if err != nil {
			return n, nil
		}
		n += int64(len(line))
		var le logEntry
		if json.Unmarshal(bytes.TrimSpace(line), &le) != nil {
			continue
		}
		if err := fn(le); err != nil {
			return n, err
		}
	}
}

// followLog reads new entries of the live log from offset until the
// container is no longer running (then drains what is left).
func (e *Engine) followLog(ctx context.Context, c *Container, path string, offset int64, fn func(logEntry) error) error {
	w := e.watchState(c.ID) // the exit is seen when recorded
	defer w.close()
	f, _ := os.Open(path)
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	for {
		st := e.state(c)
		running := st.Status == "running" || st.Status == "restarting" && st.MonitorAlive
		if f == nil {
			f, _ = os.Open(path)
		}
		if f != nil {
			// Rotation: the live file was renamed away and a new one
			// created. Finish the old one, then start the new at 0.
			if cur, err := os.Stat(path); err == nil {
				if mine, err := f.Stat(); err == nil && !os.SameFile(cur, mine) {
					if _, err := f.Seek(offset, io.SeekStart); err == nil {
						if _, err := readEntries(f, fn); err != nil {
							return err
						}
					}
					f.Close()
					f, offset = nil, 0
					continue
				}
			}
			if _, err := f.Seek(offset, io.SeekStart); err != nil {
				return err
			}
			n, err := readEntries(f, fn)
			offset += n
			if err != nil {
				return err
			}
		}
		if !running {
			return nil
		}
		pid := st.MonitorPid
		if !st.MonitorAlive {
			pid = st.Pid
		}
		select {
		case <-ctx.Done():
			return nil
		default:
		}
		// Woken by a recorded change (the exit), the end of the
		// process, or after 20 ms for new output.
		w.wait(pid, 20*time.Millisecond)
	}
}
