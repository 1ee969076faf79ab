package content

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// The helper "process" is this test binary re-executed: it takes the ingest
// lock in a real second process, writes half the blob, says "locked", and
// then commits when told to on stdin (or is killed).
const helperEnv = "BERTH_CONTENT_HELPER"

func TestHelperProcess(t *testing.T) {
	args := os.Getenv(helperEnv)
	if args == "" {
		t.Skip("helper process for the cross-process tests")
	}
	var root, blobPath string
	fmt.Sscan(args, &root, &blobPath)
	if err := helperMain(root, blobPath); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

func helperMain(root, blobPath string) error {
	ctx := context.Background()
	blob, err := os.ReadFile(blobPath)
	if err != nil {
		return err
	}
	s, err := Open(root)
	if err != nil {
		return err
	}
	w, err := s.Writer(ctx, "", descOf(blob))
	if err != nil {
		return err
	}
	defer w.Close()
	if _, err := w.Write(blob[:len(blob)/2]); err != nil {
		return err
	}
	fmt.Println("locked")
	if line, _ := bufio.NewReader(os.Stdin).ReadString('\n'); line != "commit\n" {
		return fmt.Errorf("helper told %q", line)
	}
	if _, err := w.Write(blob[len(blob)/2:]); err != nil {
		return err
	}
	_, err = w.Commit(ctx)
	return err
}

type helper struct {
	cmd   *exec.Cmd
	stdin interface{ Write([]byte) (int, error) }
}

// startHelper starts the helper on store s and returns once it holds the
// ingest lock with half the blob written.
func startHelper(t *testing.T, s *Store, blob []byte) *helper {
	t.Helper()
	blobPath := filepath.Join(t.TempDir(), "blob")
	if err := os.WriteFile(blobPath, blob, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), helperEnv+"="+s.root+" "+blobPath)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "locked\n" {
		t.Fatalf("helper: read %q, %v", line, err)
	}
	return &helper{cmd: cmd, stdin: stdin}
}

func TestTwoProcessesSameDigest(t *testing.T) {
	s := newStore(t)
	blob := randomBytes(t, 256<<10)
	desc := descOf(blob)
	h := startHelper(t, s, blob)

	type result struct {
		w   *Writer
		err error
	}
	done := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		w, err := s.Writer(ctx, "", desc)
		done <- result{w, err}
	}()
	select {
	case r := <-done:
		t.Fatalf("second writer did not wait for the first process: %v", r.err)
	case <-time.After(200 * time.Millisecond):
	}
	if _, err := h.stdin.Write([]byte("commit\n")); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err == nil {
		r.w.Close()
	}
	if !errdefs.IsAlreadyExists(r.err) {
		t.Fatalf("second writer: got %v, want ErrAlreadyExists", r.err)
	}
	if err := h.cmd.Wait(); err != nil {
		t.Fatalf("helper: %v", err)
	}
	if got, err := s.ReadAll(context.Background(), desc.Digest, 1<<20); err != nil || digest.FromBytes(got) != desc.Digest {
		t.Fatalf("blob after commit: %v", err)
	}
	if left := ingestsLeft(t, s); len(left) != 0 {
		t.Errorf("ingests left behind: %v", left)
	}
}

func TestKillMidWrite(t *testing.T) {
	tests := []struct {
		name    string
		recover func(t *testing.T, s *Store, desc ocispec.Descriptor, blob []byte)
	}{
		{"next writer restarts", func(t *testing.T, s *Store, desc ocispec.Descriptor, blob []byte) {
			w, err := s.Writer(context.Background(), "", desc)
			if err != nil {
				t.Fatalf("writer after the holder died: %v", err)
			}
			defer w.Close()
			// The dead writer's half must have been discarded: writing the
			// whole blob again fits the expected size and verifies.
			if _, err := w.Write(blob); err != nil {
				t.Fatal(err)
			}
			if _, err := w.Commit(context.Background()); err != nil {
				t.Fatal(err)
			}
		}},
		{"CleanIngests removes it", func(t *testing.T, s *Store, desc ocispec.Descriptor, blob []byte) {
			if err := s.CleanIngests(context.Background()); err != nil {
				t.Fatal(err)
			}
			if left := ingestsLeft(t, s); len(left) != 0 {
				t.Fatalf("CleanIngests left %v", left)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			blob := randomBytes(t, 128<<10)
			desc := descOf(blob)
			h := startHelper(t, s, blob)
			if err := h.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			_ = h.cmd.Wait()
			if _, err := s.Info(context.Background(), desc.Digest); !errdefs.IsNotFound(err) {
				t.Fatalf("blob after kill -9: got %v, want ErrNotFound", err)
			}
			if left := ingestsLeft(t, s); len(left) != 1 {
				t.Fatalf("expected the dead writer's ingest, got %v", left)
			}
			tc.recover(t, s, desc, blob)
			if left := ingestsLeft(t, s); len(left) != 0 {
				t.Errorf("ingests left behind: %v", left)
			}
		})
	}
}
