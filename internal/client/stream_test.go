package client

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/enginetypes"
)

// TestStreamDetachEndsOutput: the daemon ends the stream when the detach
// keys reach it, and that end of output can be what wait sees first (the
// CLI was still busy with its start request): wait must still report the
// detach, or run -it waits for an exit that never comes.
func TestStreamDetachEndsOutput(t *testing.T) {
	for i := 0; i < 200; i++ {
		ours, daemon := net.Pipe()
		gone := make(chan []byte, 1)
		go func() {
			// The daemon's attach: read input until the keys, then hang up.
			var got []byte
			b := make([]byte, 64)
			for !bytes.HasSuffix(got, enginetypes.DefaultDetachKeys) {
				n, err := daemon.Read(b)
				got = append(got, b[:n]...)
				if err != nil {
					break
				}
			}
			daemon.Close()
			gone <- got
		}()
		s := startStream(ours, bufio.NewReader(ours), true, strings.NewReader("ls\x10\x11"), io.Discard, io.Discard, enginetypes.DefaultDetachKeys)
		if got := <-gone; string(got) != "ls\x10\x11" {
			t.Fatalf("the daemon got %q, want the input and the keys", got)
		}
		// The output has ended (or is about to): wait only now.
		for len(s.out) == 0 {
			time.Sleep(time.Millisecond)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := s.wait(ctx)
		cancel()
		s.close()
		if !errors.Is(err, enginetypes.ErrDetached) {
			t.Fatalf("round %d: wait after a detach that ended the stream: %v, want ErrDetached", i, err)
		}
	}
}
