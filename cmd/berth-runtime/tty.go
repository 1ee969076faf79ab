//go:build linux

package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"

	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// consolePair makes the socketpair that stands in for --console-socket when
// berth-runtime itself owns the terminal (run -t or exec -t in the
// foreground): the container end goes to the init, which sends the pty
// master back through ours.
func consolePair() (ours, theirs *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	return os.NewFile(uintptr(fds[0]), "console-ours"), os.NewFile(uintptr(fds[1]), "console-theirs"), nil
}

// recvConsole receives the pty master sent by the container's init.
func recvConsole(sock *os.File) (*os.File, error) {
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := unix.Recvmsg(int(sock.Fd()), buf, oob, 0)
	if err != nil {
		return nil, fmt.Errorf("receive console: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, fmt.Errorf("receive console: no descriptor")
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return nil, fmt.Errorf("receive console: no descriptor")
	}
	return os.NewFile(uintptr(fds[0]), "pty-master"), nil
}

// proxyConsole connects our stdio to the container's terminal: raw mode on
// our terminal (so ctrl-c reaches the container as a byte, not a signal to
// us), window size changes forwarded. It returns a function that restores
// our terminal.
func proxyConsole(master *os.File) (restore func()) {
	restore = func() {}
	in := int(os.Stdin.Fd())
	if term.IsTerminal(in) {
		if st, err := term.MakeRaw(in); err == nil {
			restore = func() { _ = term.Restore(in, st) }
		}
		resize := func() {
			if ws, err := unix.IoctlGetWinsize(in, unix.TIOCGWINSZ); err == nil {
				_ = unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, ws)
			}
		}
		resize()
		winch := make(chan os.Signal, 1)
		signal.Notify(winch, unix.SIGWINCH)
		go func() {
			for range winch {
				resize()
			}
		}()
	}
	go func() { _, _ = io.Copy(master, os.Stdin) }()
	return restore
}
