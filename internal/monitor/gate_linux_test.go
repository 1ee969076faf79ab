package monitor

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
)

// TestStartGate checks --start-gate: the monitor sets up and then starts
// nothing until the gate's byte; EOF instead makes it exit without a
// container, a monitor.json or its sockets.
func TestStartGate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		release bool
	}{
		{"released", true},
		{"aborted", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt, mon := binaries(t)
			bundle := testutil.NewBundle(t, rt, testutil.Args("true"))
			rtRoot := t.TempDir()
			id := fmt.Sprintf("gate-%d-%s", os.Getpid(), tc.name)
			readyR, readyW, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer readyR.Close()
			gateR, gateW, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer gateW.Close()
			cmd := exec.Command(mon, "--id", id, "--bundle", bundle.Dir, "--runtime", rt, "--runtime-root", rtRoot,
				"--log-path", filepath.Join(t.TempDir(), "ctr.log"), "--start-gate")
			cmd.ExtraFiles = []*os.File{readyW, gateR}
			cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			readyW.Close()
			gateR.Close()
			var waitErr error
			exited := make(chan struct{}) // closed once waitErr is set
			go func() { waitErr = cmd.Wait(); close(exited) }()
			t.Cleanup(func() {
				_ = exec.Command(rt, "--root", rtRoot, "delete", "--force", id).Run()
				select {
				case <-exited:
				case <-time.After(10 * time.Second):
					_ = cmd.Process.Kill()
				}
			})

			// Set up: its control socket listens, but nothing ran.
			deadline := time.Now().Add(10 * time.Second)
			for {
				if _, err := os.Stat(filepath.Join(bundle.Dir, ControlSock)); err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("monitor did not set up within 10s")
				}
				time.Sleep(5 * time.Millisecond)
			}
			time.Sleep(50 * time.Millisecond) // it would have started by now, were it not gated
			if _, err := os.Stat(filepath.Join(bundle.Dir, StateFile)); err == nil {
				t.Fatal("monitor.json written before the gate opened")
			}
			if _, err := os.Stat(filepath.Join(rtRoot, id)); err == nil {
				t.Fatal("runtime ran before the gate opened")
			}

			if tc.release {
				if _, err := gateW.Write([]byte{1}); err != nil {
					t.Fatal(err)
				}
			}
			gateW.Close()
			line, _ := bufio.NewReader(readyR).ReadString('\n')
			select {
			case <-exited:
				err = waitErr
			case <-time.After(15 * time.Second):
				t.Fatal("monitor still running 15s after the gate")
			}
			if tc.release {
				if !strings.HasPrefix(line, "ok ") || err != nil {
					t.Fatalf("released: ready line %q, exit %v", line, err)
				}
				data, rerr := os.ReadFile(filepath.Join(bundle.Dir, StateFile))
				if rerr != nil || !strings.Contains(string(data), `"Status":"exited"`) {
					t.Errorf("released: monitor.json %s (%v), want an exited state", data, rerr)
				}
				return
			}
			if strings.HasPrefix(line, "ok ") || err == nil {
				t.Errorf("aborted: ready line %q, exit %v; want no start and a failed exit", line, err)
			}
			for _, f := range []string{StateFile, AttachSock, ControlSock} {
				if _, err := os.Stat(filepath.Join(bundle.Dir, f)); err == nil {
					t.Errorf("aborted: %s left behind", f)
				}
			}
			if _, err := os.Stat(filepath.Join(rtRoot, id)); err == nil {
				t.Error("aborted: the runtime created the container")
			}
		})
	}
}
