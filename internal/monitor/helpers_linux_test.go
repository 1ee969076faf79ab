package monitor

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/testutil"
)

// The binaries the root tests drive, built once per test binary.
var (
	binOnce    sync.Once
	binRuntime string
	binMonitor string
	binErr     error
	binCleanup = func() {}
)

func TestMain(m *testing.M) {
	code := m.Run()
	binCleanup()
	os.Exit(code)
}

// binaries returns berth-runtime (testutil.RuntimeBinary: $BERTH_RUNTIME or
// a fresh build) and a fresh build of berth-monitor with the Makefile's
// flags (static, pure Go), so a test never runs a stale monitor.
func binaries(t *testing.T) (runtimeBin, monitorBin string) {
	t.Helper()
	testutil.RequiresRoot(t)
	binOnce.Do(func() {
		var rtCleanup func()
		binRuntime, rtCleanup, binErr = testutil.RuntimeBinary()
		if binErr != nil {
			return
		}
		dir, err := os.MkdirTemp("", "berth-monitor-bin-")
		if err != nil {
			binErr = err
			rtCleanup()
			return
		}
		binCleanup = func() { rtCleanup(); os.RemoveAll(dir) }
		root, err := testutil.ModuleRoot()
		if err != nil {
			binErr = err
			return
		}
		binMonitor = filepath.Join(dir, "berth-monitor")
		cmd := exec.Command("go", "build", "-trimpath", "-tags", "netgo osusergo", "-ldflags", "-s -w", "-o", binMonitor, "./cmd/berth-monitor")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("build berth-monitor: %w\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binRuntime, binMonitor
}

// ctr is a container under a monitor started by a test.
type ctr struct {
	t       *testing.T
	id      string
	bundle  *testutil.Bundle
	rtRoot  string
	rt      string
	logPath string
	cmd     *exec.Cmd
	ready   *bufio.Reader
	exited  chan struct{} // closed when the monitor process exited
}

var idSeq int

// startMonitor makes a busybox bundle (mutated by mutate), starts
// berth-monitor for it with extra flags, and returns once the monitor wrote
// its first ready line (returned). The container is deleted and the monitor
// killed when the test ends, whatever happened.
func startMonitor(t *testing.T, flags []string, mutate ...func(*specs.Spec)) (*ctr, string) {
	t.Helper()
	rt, mon := binaries(t)
	idSeq++
	c := &ctr{
		t:      t,
		id:     fmt.Sprintf("mon-%d-%d", os.Getpid(), idSeq),
		bundle: testutil.NewBundle(t, rt, mutate...),
		rtRoot: t.TempDir(),
		rt:     rt,
		exited: make(chan struct{}),
	}
	c.logPath = filepath.Join(t.TempDir(), "ctr.log")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"--id", c.id, "--bundle", c.bundle.Dir, "--runtime", rt,
		"--runtime-root", c.rtRoot, "--log-path", c.logPath}, flags...)
	c.cmd = exec.Command(mon, args...)
	c.cmd.ExtraFiles = []*os.File{w}
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	stderr := &strings.Builder{}
	c.cmd.Stderr = stderr
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	go func() { _ = c.cmd.Wait(); close(c.exited) }()
	t.Cleanup(func() {
		_ = exec.Command(rt, "--root", c.rtRoot, "delete", "--force", c.id).Run()
		select {
		case <-c.exited:
		case <-time.After(10 * time.Second):
			_ = c.cmd.Process.Kill()
			<-c.exited
		}
		r.Close()
		if t.Failed() {
			t.Logf("monitor stderr: %s", stderr)
			if b, err := os.ReadFile(filepath.Join(c.bundle.Dir, runtimeLog)); err == nil {
				t.Logf("runtime log: %s", b)
			}
		}
	})
	c.ready = bufio.NewReader(r)
	return c, c.readyLine()
}

// readyLine reads the next line the monitor writes on fd 3.
func (c *ctr) readyLine() string {
	c.t.Helper()
	type res struct {
		s   string
		err error
	}
	ch := make(chan res, 1)
	go func() { s, err := c.ready.ReadString('\n'); ch <- res{s, err} }()
	select {
	case r := <-ch:
		if r.err != nil && r.s == "" {
			c.t.Fatalf("ready pipe: %v", r.err)
		}
		return strings.TrimSuffix(r.s, "\n")
	case <-time.After(30 * time.Second):
		c.t.Fatal("no ready line from the monitor within 30s")
	}
	return ""
}

func (c *ctr) path(name string) string { return filepath.Join(c.bundle.Dir, name) }

// state reads monitor.json.
func (c *ctr) state() State {
	c.t.Helper()
	var s State
	data, err := os.ReadFile(c.path(StateFile))
	if err != nil {
		c.t.Fatal(err)
	}
	if err := json.Unmarshal(data, &s); err != nil {
		c.t.Fatalf("monitor.json: %v: %s", err, data)
	}
	return s
}

// waitState polls monitor.json until ok accepts it.
func (c *ctr) waitState(what string, timeout time.Duration, ok func(State) bool) State {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s := c.state()
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("waiting for %s: state %+v", what, s)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitExit waits for the monitor process to end.
func (c *ctr) waitExit(timeout time.Duration) {
	c.t.Helper()
	select {
	case <-c.exited:
	case <-time.After(timeout):
		c.t.Fatalf("monitor still running after %v", timeout)
	}
}

// control sends one control.sock request and decodes the reply into v.
func (c *ctr) control(req Request, v any) {
	c.t.Helper()
	conn, err := dialUnix(c.path(ControlSock))
	if err != nil {
		c.t.Fatal(err)
	}
	defer conn.Close()
	if err := json.NewEncoder(conn).Encode(req); err != nil {
		c.t.Fatal(err)
	}
	if err := json.NewDecoder(conn).Decode(v); err != nil {
		c.t.Fatalf("control %s: %v", req.Op, err)
	}
}

func (c *ctr) runtime(args ...string) (string, error) {
	out, err := exec.Command(c.rt, append([]string{"--root", c.rtRoot}, args...)...).CombinedOutput()
	return string(out), err
}

// readFrames demultiplexes stdcopy frames until EOF.
func readFrames(r io.Reader) (stdout, stderr string, err error) {
	var o, e strings.Builder
	var hdr [8]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return o.String(), e.String(), nil
			}
			return o.String(), e.String(), err
		}
		buf := make([]byte, binary.BigEndian.Uint32(hdr[4:]))
		if _, err := io.ReadFull(r, buf); err != nil {
			return o.String(), e.String(), err
		}
		switch hdr[0] {
		case streamStdout:
			o.Write(buf)
		case streamStderr:
			e.Write(buf)
		default:
			return o.String(), e.String(), fmt.Errorf("bad stream %d", hdr[0])
		}
	}
}
