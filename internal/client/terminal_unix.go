//go:build unix

package client

import (
	"os"
	"os/signal"

	"golang.org/x/sys/unix"
)

// WatchResize calls send on every SIGWINCH (our terminal changed size)
// until the returned function is called.
func WatchResize(send func()) (stop func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, unix.SIGWINCH)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-ch:
				send()
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(ch)
		close(done)
	}
}
