//go:build linux

package containerd

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// namespace is the containerd namespace every ctr call uses; it also names the
// containers' cgroup parent (/berth-test/<id>).
const namespace = "berth-test"

// daemon is a private containerd: its own config, root, state, opt dir and
// sockets, all under dir.
type daemon struct {
	dir     string // everything of this daemon lives below
	sock    string // gRPC address
	runtime string // --runc-binary for the runc v2 shim
	runRoot string // --runc-root: the runtime's state directory
	fifoDir string // --fifo-dir: ctr's stdio FIFOs
	log     string // containerd's stdout+stderr
	cmd     *exec.Cmd
	exited  chan struct{} // closed when cmd has been waited for
}

// startDaemon starts containerd with a generated config.toml and waits until it
// answers on its socket. Cleanup (registered on t) kills what is left of the
// tasks, stops containerd and every shim it started, unmounts whatever is still
// mounted under dir, and removes dir.
func startDaemon(t *testing.T, runtimeBin string) *daemon {
	t.Helper()
	// Not t.TempDir: removal must wait until the container rootfs mounts are
	// gone, and RemoveAll must never walk into a mount that is still there.
	dir, err := os.MkdirTemp("", "berth-ctrd-")
	if err != nil {
		t.Fatal(err)
	}
	d := &daemon{
		dir:     dir,
		sock:    filepath.Join(dir, "containerd.sock"),
		runtime: runtimeBin,
		runRoot: filepath.Join(dir, "runtime-root"),
		fifoDir: filepath.Join(dir, "fifo"),
		log:     filepath.Join(dir, "containerd.log"),
		exited:  make(chan struct{}),
	}
	for _, p := range []string{d.runRoot, d.fifoDir} {
		if err := os.MkdirAll(p, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { d.cleanup(t) })

	config := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
]

[grpc]
  address = %q

[ttrpc]
  address = %q

[debug]
  level = "debug"

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = %q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), d.sock, d.sock+".ttrpc",
		filepath.Join(dir, "opt"))
	cfg := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfg, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(d.log)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close() // the child has its own copy
	d.cmd = exec.Command("containerd", "--config", cfg)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	// Its own process group, so that a ^C on the test does not reach it before
	// cleanup has stopped the tasks in order.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("start containerd: %v", err)
	}
	go func() { d.cmd.Wait(); close(d.exited) }()

	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-d.exited:
			t.Fatalf("containerd exited during startup (%v); log:\n%s", d.cmd.ProcessState, d.logTail(60))
		default:
		}
		if _, err := os.Stat(d.sock); err == nil {
			if _, err := d.ctr(10*time.Second, "version"); err == nil {
				return d
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("containerd did not answer on %s within 30s; log:\n%s", d.sock, d.logTail(60))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// result is one finished ctr invocation.
type result struct {
	args   []string
	stdout string
	stderr string
	code   int // exit status; -1 if it did not exit normally
}

func (r result) String() string {
	return fmt.Sprintf("ctr %s: exit %d\nstdout: %q\nstderr: %q",
		strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// ctr runs ctr against this daemon in the test namespace. err is set only when
// ctr could not be run or timed out; a non-zero exit is reported in code.
func (d *daemon) ctr(timeout time.Duration, args ...string) (result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	full := append([]string{"--address", d.sock, "--namespace", namespace}, args...)
	cmd := exec.CommandContext(ctx, "ctr", full...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{args: args, stdout: stdout.String(), stderr: stderr.String(), code: cmd.ProcessState.ExitCode()}
	if ctx.Err() != nil {
		return r, fmt.Errorf("%s\ntimed out after %v", r, timeout)
	}
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		return r, fmt.Errorf("ctr %s: %w", strings.Join(args, " "), err)
	}
	return r, nil
}

// mustCtr runs ctr and fails t unless it exits 0.
func (d *daemon) mustCtr(t *testing.T, args ...string) result {
	t.Helper()
	r, err := d.ctr(60*time.Second, args...)
	if err != nil {
		t.Fatalf("%v\ncontainerd log:\n%s", err, d.logTail(40))
	}
	if r.code != 0 {
		t.Fatalf("%s\ncontainerd log:\n%s", r, d.logTail(40))
	}
	return r
}

// runtimeFlags are the ctr run flags that point the runc v2 shim at the
// runtime under test, its state directory, and the FIFO directory.
func (d *daemon) runtimeFlags() []string {
	return []string{
		"--runtime", "io.containerd.runc.v2",
		"--runc-binary", d.runtime,
		"--runc-root", d.runRoot,
		"--fifo-dir", d.fifoDir,
	}
}

// logTail returns the last n lines of containerd's log (which includes what
// the shims log, and so the runtime's own error messages).
func (d *daemon) logTail(n int) string {
	b, err := os.ReadFile(d.log)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// cleanup undoes startDaemon in dependency order: tasks (so shims exit and
// unmount the rootfs), containers, containerd itself, stray shims, leftover
// mounts, cgroups, and finally the directory.
func (d *daemon) cleanup(t *testing.T) {
	if t.Failed() {
		t.Logf("containerd log (tail):\n%s", d.logTail(80))
	}
	if d.cmd != nil && d.cmd.Process != nil {
		select {
		case <-d.exited:
		default:
			d.removeAllContainers(t)
			d.stop(t)
		}
	}
	d.killShims(t)
	if err := unmountUnder(d.dir); err != nil {
		t.Errorf("cleanup: %v (leaving %s in place)", err, d.dir)
		return
	}
	removeCgroups(namespace)
	if err := os.RemoveAll(d.dir); err != nil {
		t.Errorf("cleanup: %v", err)
	}
}

func (d *daemon) removeAllContainers(t *testing.T) {
	if r, err := d.ctr(20*time.Second, "task", "ls", "--quiet"); err == nil && r.code == 0 {
		for _, id := range strings.Fields(r.stdout) {
			d.ctr(10*time.Second, "task", "kill", "--signal", "SIGKILL", "--all", id)
			// delete --force kills again and waits for the exit.
			if r, err := d.ctr(30*time.Second, "task", "delete", "--force", id); err != nil {
				t.Logf("cleanup: %v", err)
			} else if r.code != 0 && r.code != 137 {
				t.Logf("cleanup: %s", r)
			}
		}
	}
	if r, err := d.ctr(20*time.Second, "containers", "ls", "--quiet"); err == nil && r.code == 0 {
		for _, id := range strings.Fields(r.stdout) {
			if r, err := d.ctr(20*time.Second, "containers", "delete", id); err != nil || r.code != 0 {
				t.Logf("cleanup: containers delete %s: %v %s", id, err, r)
			}
		}
	}
}

// stop sends containerd SIGTERM and, if it has not exited after 10s, SIGKILL.
func (d *daemon) stop(t *testing.T) {
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
		return
	case <-time.After(10 * time.Second):
	}
	t.Logf("cleanup: containerd ignored SIGTERM for 10s, sending SIGKILL")
	d.cmd.Process.Kill()
	<-d.exited
}

// killShims SIGKILLs shims this daemon started that are still running (they
// outlive containerd by design). They are found by pid: a process whose
// command line carries this daemon's socket address, which no other process
// on the machine can have.
func (d *daemon) killShims(t *testing.T) {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if len(args) == 0 || !strings.HasPrefix(filepath.Base(args[0]), "containerd-shim") {
			continue
		}
		for _, a := range args {
			if a == d.sock {
				t.Logf("cleanup: killing leftover shim pid %d", pid)
				syscall.Kill(pid, syscall.SIGKILL)
				break
			}
		}
	}
}

// unmountUnder detaches every mount at or below dir, deepest first, and
// reports an error if any is left.
func unmountUnder(dir string) error {
	for attempt := 0; attempt < 3; attempt++ {
		mounts, err := mountsUnder(dir)
		if err != nil {
			return err
		}
		if len(mounts) == 0 {
			return nil
		}
		for _, m := range mounts {
			syscall.Unmount(m, syscall.MNT_DETACH)
		}
	}
	mounts, err := mountsUnder(dir)
	if err == nil && len(mounts) > 0 {
		err = fmt.Errorf("mounts left under %s: %v", dir, mounts)
	}
	return err
}

// mountsUnder lists the mount points at or below dir, longest path first.
func mountsUnder(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMountinfo(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out, sc.Err()
}

// unescapeMountinfo undoes the kernel's octal escaping (\040 for space etc.).
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var c int
			if _, err := fmt.Sscanf(s[i+1:i+4], "%o", &c); err == nil {
				b.WriteByte(byte(c))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// removeCgroups removes the (empty) cgroup parent ctr gives the namespace's
// containers, /<ns>, in every hierarchy. rmdir only succeeds on cgroups
// without processes or children; anything else is left for the record.
func removeCgroups(ns string) {
	hier, _ := filepath.Glob("/sys/fs/cgroup/*")
	hier = append(hier, "/sys/fs/cgroup")
	for _, h := range hier {
		parent := filepath.Join(h, ns)
		kids, _ := os.ReadDir(parent)
		for _, k := range kids {
			if k.IsDir() {
				syscall.Rmdir(filepath.Join(parent, k.Name()))
			}
		}
		syscall.Rmdir(parent)
	}
}

// eventLog collects the output of a running `ctr events`.
type eventLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (e *eventLog) Write(p []byte) (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.buf.Write(p)
}

func (e *eventLog) text() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.buf.String()
}

// watchEvents starts `ctr events` (stopped by t's cleanup) and returns what
// it prints: one line per event, "<time> <namespace> <topic> <event JSON>".
func (d *daemon) watchEvents(t *testing.T) *eventLog {
	t.Helper()
	e := &eventLog{}
	cmd := exec.Command("ctr", "--address", d.sock, "--namespace", namespace, "events")
	cmd.Stdout, cmd.Stderr = e, e
	if err := cmd.Start(); err != nil {
		t.Fatalf("ctr events: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	// The subscription is live once ctr has connected; an event published
	// before then would be missed. Give it a moment.
	time.Sleep(200 * time.Millisecond)
	return e
}

// exitStatus waits up to timeout for the /tasks/exit event of process execID
// (the container ID for its init) in container id, and returns its status.
func (e *eventLog) exitStatus(id, execID string, timeout time.Duration) (uint32, bool) {
	deadline := time.Now().Add(timeout)
	for {
		for _, line := range strings.Split(e.text(), "\n") {
			if !strings.Contains(line, " /tasks/exit ") {
				continue
			}
			i := strings.IndexByte(line, '{')
			if i < 0 {
				continue
			}
			var ev struct {
				ContainerID string `json:"container_id"`
				ID          string `json:"id"`
				ExitStatus  uint32 `json:"exit_status"`
			}
			if json.Unmarshal([]byte(line[i:]), &ev) == nil && ev.ContainerID == id && ev.ID == execID {
				return ev.ExitStatus, true
			}
		}
		if time.Now().After(deadline) {
			return 0, false
		}
		time.Sleep(50 * time.Millisecond)
	}
}
