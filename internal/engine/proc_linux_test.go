package engine

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestStateWatchWakes: a waiter on a container's state wakes when its
// monitor answers the control "wait" request (an exit was recorded), when
// the monitor goes away, or — with no monitor to ask — when the process it
// names exits, long before its timeout.
func TestStateWatchWakes(t *testing.T) {
	tests := []struct {
		name    string
		monitor func(conn net.Conn) // serves one control connection; nil: no monitor
		kill    bool                // the process exits after 50 ms
		// exitCode is the exit the watch must report afterwards (-1: none).
		exitCode int
	}{
		{name: "exit recorded", monitor: func(conn net.Conn) {
			if line, err := bufio.NewReader(conn).ReadString('\n'); err != nil || line != `{"op":"wait"}`+"\n" {
				t.Errorf("request %q, %v", line, err)
			}
			time.Sleep(50 * time.Millisecond)
			_, _ = conn.Write([]byte(`{"Status":"exited","ExitCode":3}` + "\n"))
			conn.Close()
		}, exitCode: 3},
		{name: "monitor gone", monitor: func(conn net.Conn) {
			time.Sleep(50 * time.Millisecond)
			conn.Close()
		}, exitCode: -1},
		{name: "no monitor, process exited", kill: true, exitCode: -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, id := watchEngine(t)
			if tc.monitor != nil {
				l, err := net.Listen("unix", filepath.Join(e.bundleDir(id), "control.sock"))
				if err != nil {
					t.Fatal(err)
				}
				defer l.Close()
				go func() {
					if conn, err := l.Accept(); err == nil {
						tc.monitor(conn)
					}
				}()
			}
			proc := exec.Command("sleep", "30")
			if err := proc.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { _ = proc.Process.Kill(); _ = proc.Wait() }()
			w := e.watchState(id)
			if (w != nil) != (tc.monitor != nil) {
				t.Fatalf("watch %v with a monitor %v", w != nil, tc.monitor != nil)
			}
			defer w.close()
			if tc.kill {
				time.AfterFunc(50*time.Millisecond, func() { _ = proc.Process.Kill() })
			}
			// The timeout is far from the event so that the two cannot be
			// confused on a loaded machine, where waking for the event may
			// take seconds (it was 5 s against a 2 s bound).
			const timeout = time.Minute
			start := time.Now()
			w.wait(proc.Process.Pid, timeout)
			if d := time.Since(start); d > timeout/2 {
				t.Fatalf("woke after %v, want soon after the event (50 ms), not at the %v timeout", d, timeout)
			}
			ex, ok := w.exited()
			if got := map[bool]int{true: ex.ExitCode, false: -1}[ok]; got != tc.exitCode {
				t.Fatalf("exited() = %d (%v), want %d", ex.ExitCode, ok, tc.exitCode)
			}
		})
	}
}

// TestStateWatchMonitorGoneMidWait: a monitor that dies while a waiter
// watches it (kill -9) leaves the watch with no one to ask; the waits that
// follow fall back to the container's process and the timeout. They used
// to select on the dead connection's closed channel and call Close on a
// nil connection: `berth wait` and `logs -f` panicked.
func TestStateWatchMonitorGoneMidWait(t *testing.T) {
	e, id := watchEngine(t)
	sock := filepath.Join(e.bundleDir(id), "control.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		conn, err := l.Accept()
		if err != nil {
			return
		}
		// It dies after the request came (an earlier close could fail
		// the watch's write, and there would be no watch to test): its
		// socket goes, then the connection.
		_, _ = bufio.NewReader(conn).ReadString('\n')
		l.Close()
		_ = os.Remove(sock)
		conn.Close()
	}()
	proc := exec.Command("sleep", "30")
	if err := proc.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = proc.Process.Kill(); _ = proc.Wait() }()
	w := e.watchState(id)
	if w == nil {
		t.Fatal("no watch with a monitor listening")
	}
	defer w.close()
	// The first wait may be the one the EOF wakes; after it there is
	// nobody to ask, and each wait lasts its timeout (the process lives).
	for i := 0; i < 4; i++ {
		start := time.Now()
		w.wait(proc.Process.Pid, 50*time.Millisecond)
		if d := time.Since(start); i > 0 && d < 40*time.Millisecond {
			t.Fatalf("wait %d returned after %v with the process alive, want its 50 ms timeout", i, d)
		}
	}
	if _, ok := w.exited(); ok {
		t.Fatal("a monitor that died without answering announced an exit")
	}
}

// watchEngine is an engine on a short state directory (sun_path holds 108
// bytes) with the bundle directory of container "c1".
func watchEngine(t *testing.T) (*Engine, string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "sw")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	e := &Engine{opts: Options{State: dir}}
	id := "c1"
	if err := os.MkdirAll(e.bundleDir(id), 0o700); err != nil {
		t.Fatal(err)
	}
	return e, id
}
