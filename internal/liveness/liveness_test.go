package liveness

import (
	"bufio"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func TestHoldClaim(t *testing.T) {
	path := filepath.Join(t.TempDir(), "work.lock")
	f, err := Hold(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Hold(path); !errors.Is(err, fs.ErrExist) {
		t.Errorf("second Hold = %v, want ErrExist", err)
	}
	if g, ok := Claim(path); ok {
		g.Close()
		t.Fatal("Claim took a lock its owner holds")
	}
	f.Close() // the owner is gone
	g, ok := Claim(path)
	if !ok {
		t.Fatal("Claim refused a lock nobody holds")
	}
	defer g.Close()
	if h, ok := Claim(path); ok {
		h.Close()
		t.Error("a second Claim took a claimed lock")
	}
	os.Remove(path)
	if _, ok := Claim(path); ok {
		t.Error("Claim of a removed path succeeded")
	}
}

// TestHoldDiesWithProcess: the lock of a killed process is free, and a
// child started while it was held did not keep it (close-on-exec).
func TestHoldDiesWithProcess(t *testing.T) {
	if os.Getenv("LIVENESS_CHILD") != "" {
		if _, err := Hold(os.Getenv("LIVENESS_CHILD")); err != nil {
			os.Exit(2)
		}
		sleeper := exec.Command("sleep", "30") // must not inherit the lock
		if err := sleeper.Start(); err != nil {
			os.Exit(3)
		}
		os.Stdout.WriteString(strconv.Itoa(sleeper.Process.Pid) + "\n")
		select {}
	}
	path := filepath.Join(t.TempDir(), "step.lock")
	cmd := exec.Command(os.Args[0], "-test.run=^TestHoldDiesWithProcess$")
	cmd.Env = append(os.Environ(), "LIVENESS_CHILD="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	sleeper, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(sleeper, syscall.SIGKILL)
	if g, ok := Claim(path); ok {
		g.Close()
		t.Fatal("claimed the lock of a live process")
	}
	cmd.Process.Kill()
	cmd.Wait()
	g, ok := Claim(path)
	if !ok {
		t.Fatal("the lock of a killed process is still held (inherited by its child?)")
	}
	g.Close()
}
