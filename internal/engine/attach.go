package engine

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/berth-dev/berth/internal/enginetypes"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/moby/moby/api/types/events"
	"golang.org/x/sys/unix"
)

// Attach connects to a running container's stdio through its monitor's
// attach socket; it returns when the container exits (nil), the user
// detaches (ErrDetached) or ctx ends.
func (e *Engine) Attach(ctx context.Context, ref string, opts AttachOptions) error {
	c, err := e.lookupContainer(ref)
	if err != nil {
		return err
	}
	if st := e.state(c); st.Status != "running" {
		return fmt.Errorf("You cannot attach to a stopped container, start it first: %w", errdefs.ErrConflict)
	}
	conn, err := dialUnix(filepath.Join(e.bundleDir(c.ID), "attach.sock"), 2*time.Second)
	if err != nil {
		return fmt.Errorf("attach %s: monitor unreachable: %w", c.Name, errors.Join(err, errdefs.ErrUnavailable))
	}
	defer conn.Close()
	e.emit(events.ContainerEventType, events.ActionAttach, c, nil)
	return attachStream(ctx, conn, c.Config.Tty, opts, true)
}

// StartAttached is `docker run` without -d (and `start -a`): start the
// container, stream its output until it exits and return its exit code.
//
// Output without a terminal comes from the json-file log, read from its
// start: the attach socket only delivers output produced after a client
// connects, and a short-lived workload can finish before the monitor's
// ready line reaches us, so the log is the only race-free source (and it
// keeps stdout and stderr apart). With a terminal the socket carries the
// raw bytes (the log's JSON would mangle non-UTF-8 output).
func (e *Engine) StartAttached(ctx context.Context, ref string, opts AttachOptions) (int, error) {
	c, err := e.lookupContainer(ref)
	if err != nil {
		return 0, err
	}
	if c.HostConfig.AutoRemove {
		// We remove the container ourselves once its exit code is known,
		// in process; the shared lock tells its monitor not to spend a
		// berth process on it. Should we die first, the lock goes with
		// us and the monitor removes it.
		release, err := e.holdAutoRemove(c.ID)
		if err != nil {
			return 0, err
		}
		defer release()
	}
	Mark("start")
	if err := e.start(ctx, c); err != nil {
		return 0, err
	}
	var conn *net.UnixConn
	if c.Config.Tty || opts.Stdin != nil {
		conn, err = dialUnix(filepath.Join(e.bundleDir(c.ID), "attach.sock"), 2*time.Second)
		if err != nil && e.state(c).Status == "running" {
			return 0, fmt.Errorf("attach %s: %w", c.Name, err)
		}
	}
	if conn != nil {
		defer conn.Close()
	}
	if c.Config.Tty && conn != nil {
		err = attachStream(ctx, conn, true, opts, true)
	} else {
		if conn != nil {
			go func() { _, _ = io.Copy(io.Discard, conn) }()
			if opts.Stdin != nil {
				go copyStdin(conn, opts.Stdin, nil)
			}
		}
		err = e.followLog(ctx, c, e.logPath(c.ID), 0, func(le logEntry) error {
			w := opts.Stdout
			if le.Stream == "stderr" {
				w = opts.Stderr
			}
			if w == nil {
				return nil
			}
			_, err := io.WriteString(w, le.Log)
			return err
		})
	}
	if err != nil {
		return 0, err
	}
	Mark("attach: output done")
	code, err := e.wait(ctx, c, c.ID)
	if err != nil {
		return 0, err
	}
	Mark("attach: exit code known")
	if c.HostConfig.AutoRemove {
		e.emit(events.ContainerEventType, events.ActionDie, c, map[string]string{"exitCode": strconv.Itoa(code)})
		err := e.remove(context.WithoutCancel(ctx), c, RemoveOptions{Force: true, Volumes: true})
		if err != nil && !errdefs.IsNotFound(err) {
			return code, err
		}
		return code, nil
	}
	e.reapExited(context.WithoutCancel(ctx), c)
	Mark("attach: reaped")
	return code, nil
}

// holdAutoRemove takes the --rm lock of id shared (see monitor.Options'
// ExitCommandLock) until release.
func (e *Engine) holdAutoRemove(id string) (release func(), err error) {
	if err := os.MkdirAll(e.bundleDir(id), 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(e.autoRemoveLock(id), os.O_RDONLY|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_SH); err != nil {
		f.Close()
		return nil, &os.PathError{Op: "flock", Path: f.Name(), Err: err}
	}
	return func() { f.Close() }, nil
}

// reapExited releases the rootfs mount of a container that exited with
// its monitor gone, and keeps its final state in the record.
func (e *Engine) reapExited(ctx context.Context, c *Container) {
	unlock, err := e.lockContainer(c.ID)
	if err != nil {
		return
	}
	defer unlock()
	if st := e.state(c); st.Status == "exited" && !st.MonitorAlive {
		e.emit(events.ContainerEventType, events.ActionDie, c, map[string]string{"exitCode": strconv.Itoa(st.ExitCode)})
		e.recordExit(c.ID, st.State)
		Mark("reap: exit recorded")
		_ = e.cleanupRuntime(ctx, c)
	}
}

// Resize sets the container's terminal size.
func (e *Engine) Resize(ctx context.Context, ref string, height, width uint) error {
	c, err := e.lookupContainer(ref)
	if err != nil {
		return err
	}
	_, err = e.controlRequest(c.ID, map[string]any{"op": "resize", "height": height, "width": width})
	return err
}

// attachStream runs one attachment over conn until its output ends.
func attachStream(ctx context.Context, conn *net.UnixConn, tty bool, opts AttachOptions, _ bool) error {
	outDone := make(chan error, 1)
	go func() {
		if tty {
			w := opts.Stdout
			if w == nil {
				w = io.Discard
			}
			_, err := io.Copy(w, conn)
			outDone <- err
			return
		}
		outDone <- demux(conn, opts.Stdout, opts.Stderr)
	}()
	detached := make(chan struct{})
	if opts.Stdin != nil {
		keys := opts.DetachKeys
		if keys == nil {
			keys = enginetypes.DefaultDetachKeys
		}
		if !tty {
			keys = nil
		}
		go func() {
			if copyStdin(conn, opts.Stdin, keys) {
				close(detached)
			}
		}()
	}
	select {
	case err := <-outDone:
		if errors.Is(err, net.ErrClosed) {
			err = nil
		}
		return err
	case <-detached:
		return ErrDetached
	case <-ctx.Done():
		return ctx.Err()
	}
}

// copyStdin forwards in to the container, half-closing at EOF (which
// closes the container's stdin). It reports whether it stopped because
// the detach keys were typed.
func copyStdin(conn *net.UnixConn, in io.Reader, keys []byte) (detached bool) {
	buf := make([]byte, 32<<10)
	matched := 0
	for {
		n, err := in.Read(buf)
		if n > 0 {
			chunk := buf[:n]
			if len(keys) > 0 {
				var out []byte
				for _, b := range chunk {
					if b == keys[matched] {
						matched++
						if matched == len(keys) {
							if len(out) > 0 {
								_, _ = conn.Write(out)
							}
							return true
						}
						continue
					}
					if matched > 0 {
						// A partial sequence that did not complete is input.
						out = append(out, keys[:matched]...)
						matched = 0
					}
					if b == keys[0] {
						matched = 1
						continue
					}
					out = append(out, b)
				}
				chunk = out
			}
			if len(chunk) > 0 {
				if _, werr := conn.Write(chunk); werr != nil {
					return false
				}
			}
		}
		if err != nil {
			_ = conn.CloseWrite()
			return false
		}
	}
}

// demux splits Docker's stdcopy frames (8-byte header: stream, 3 zero
// bytes, big-endian length) into stdout and stderr.
func demux(r io.Reader, stdout, stderr io.Writer) error {
	var hdr [8]byte
	var buf bytes.Buffer
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil
			}
			return err
		}
		n := binary.BigEndian.Uint32(hdr[4:])
		w := stdout
		if hdr[0] == 2 {
			w = stderr
		}
		if w == nil {
			w = io.Discard
		}
		buf.Reset()
		if _, err := io.CopyN(&buf, r, int64(n)); err != nil {
			return nil
		}
		if _, err := w.Write(buf.Bytes()); err != nil {
			return err
		}
	}
}
