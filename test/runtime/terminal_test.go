//go:build linux

package runtime_test

import (
	"bytes"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/testutil"
)

// consoleSocket listens on a unix socket for the pty master that the
// runtime sends with SCM_RIGHTS, as containerd's shim does.
func consoleSocket(t *testing.T) (path string, master <-chan *os.File) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "console.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan *os.File, 1)
	t.Cleanup(func() { l.Close() })
	go func() {
		defer close(ch)
		conn, err := l.AcceptUnix()
		if err != nil {
			return
		}
		defer conn.Close()
		buf := make([]byte, 4096)
		oob := make([]byte, unix.CmsgSpace(4))
		_, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
		if err != nil {
			t.Errorf("console socket: %v", err)
			return
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil || len(msgs) != 1 {
			t.Errorf("console socket: no control message (%v)", err)
			return
		}
		fds, err := unix.ParseUnixRights(&msgs[0])
		if err != nil || len(fds) != 1 {
			t.Errorf("console socket: no fd (%v)", err)
			return
		}
		// Non-blocking, so reads honour deadlines.
		_ = unix.SetNonblock(fds[0], true)
		f := os.NewFile(uintptr(fds[0]), "pty-master")
		t.Cleanup(func() { f.Close() })
		ch <- f
	}()
	return path, ch
}

func recvMaster(t *testing.T, ch <-chan *os.File) *os.File {
	t.Helper()
	select {
	case f := <-ch:
		if f == nil {
			t.Fatal("no pty master received on the console socket")
		}
		return f
	case <-time.After(10 * time.Second):
		t.Fatal("timed out waiting for the pty master on the console socket")
	}
	return nil
}

// readUntil reads the pty master until it has seen want.
func readUntil(t *testing.T, f *os.File, want string) string {
	t.Helper()
	var got bytes.Buffer
	buf := make([]byte, 1024)
	_ = f.SetReadDeadline(time.Now().Add(10 * time.Second))
	for !strings.Contains(got.String(), want) {
		n, err := f.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			if errors.Is(err, unix.EIO) && strings.Contains(got.String(), want) {
				break
			}
			t.Fatalf("read pty (want %q): %v; got so far %q", want, err, got.String())
		}
	}
	return got.String()
}

// TestTerminalCreateConsoleSocket: create --console-socket hands over a pty
// master; what we type reaches the container's shell and its output comes
// back.
func TestTerminalCreateConsoleSocket(t *testing.T) {
	t.Parallel()
	r := newRT(t)
	id := r.newID()
	b := r.bundle(id, testutil.Args("sh"), func(s *specs.Spec) { s.Process.Terminal = true })
	sock, ch := consoleSocket(t)
	r.must("create", "--bundle", b.Dir, "--console-socket", sock, id)
	master := recvMaster(t, ch)
	r.must("start", id)
	if _, err := master.WriteString("tty; echo hello-$((6*7))\n"); err != nil {
		t.Fatal(err)
	}
	out := readUntil(t, master, "hello-42")
	if !strings.Contains(out, "/dev/pts/") {
		t.Errorf("tty inside did not print a /dev/pts path: %q", out)
	}
	if _, err := master.WriteString("exit 3\n"); err != nil {
		t.Fatal(err)
	}
	r.waitStatus(id, specs.StateStopped)
}

// TestTerminalExecConsoleSocket: exec -t --console-socket gives the exec'd
// process its own terminal, in the foreground (exec waits and returns the
// status; runc instead ignores the socket there and proxies stdio) and
// detached.
func TestTerminalExecConsoleSocket(t *testing.T) {
	t.Parallel()
	r := newRT(t)
	id, _ := r.startDetached()
	for _, detach := range []bool{false, true} {
		t.Run(map[bool]string{false: "foreground", true: "detach"}[detach], func(t *testing.T) {
			sock, ch := consoleSocket(t)
			args := []string{"exec", "-t", "--console-socket", sock}
			if detach {
				args = append(args, "--detach")
			}
			args = append(args, id, "sh", "-c", "tty; echo exec-$((6*7)); sleep 0.5; exit 4")
			done := make(chan result, 1)
			go func() { done <- r.run(args...) }()
			master := recvMaster(t, ch)
			out := readUntil(t, master, "exec-42")
			if !strings.Contains(out, "/dev/pts/") {
				t.Errorf("tty in exec did not print a /dev/pts path: %q", out)
			}
			want := 4
			if detach {
				want = 0
			}
			select {
			case res := <-done:
				if res.code != want {
					t.Errorf("want exit %d, got %v", want, res)
				}
			case <-time.After(15 * time.Second):
				t.Fatal("exec -t did not return")
			}
		})
	}
}
