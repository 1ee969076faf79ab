package network

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"golang.org/x/sys/unix"
)

func (s *Store) dnsPidFile(network string) string {
	return filepath.Join(s.opts.State, "network", "dns", network+".pid")
}

// dnsRunning reports the pid of network's DNS server if it is alive.
func (s *Store) dnsRunning(network string) int {
	b, err := os.ReadFile(s.dnsPidFile(network))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if pid <= 0 || unix.Kill(pid, 0) != nil {
		return 0
	}
	// A recycled pid would not have our command line.
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if !strings.Contains(string(cmdline), s.DNSDir(network)) {
		return 0
	}
	return pid
}

// EnsureDNS starts network n's DNS server, running exe with DNSCommand,
// unless it runs already. Call it after a container's attachment, when
// the bridge holds the gateway address the server binds. It returns once
// the server listens.
func (s *Store) EnsureDNS(n *Network, exe string) error {
	unlock, err := s.lock()
	if err != nil {
		return err
	}
	defer unlock()
	if s.dnsRunning(n.Name) != 0 {
		return nil
	}
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	args := append(append([]string{}, DNSCommand...), "--dir", s.DNSDir(n.Name),
		"--listen", netip.AddrPortFrom(n.Gateway, 53).String())
	cmd := exec.Command(exe, args...)
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Dir = "/"
	if err := cmd.Start(); err != nil {
		w.Close()
		return fmt.Errorf("network %s: start dns server: %w", n.Name, err)
	}
	w.Close()
	go func() { _ = cmd.Wait() }() // reaped if it dies while we run
	done := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(r).ReadString('\n')
		done <- strings.TrimSpace(line)
	}()
	var line string
	select {
	case line = <-done:
	case <-time.After(5 * time.Second):
		line = "timeout"
	}
	if line != "ok" {
		_ = cmd.Process.Kill()
		return fmt.Errorf("network %s: dns server: %s: %w", n.Name, line, errdefs.ErrUnavailable)
	}
	return writeFileAtomic(s.dnsPidFile(n.Name), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644)
}

// StopDNSIfIdle stops network's DNS server when no record is left.
func (s *Store) StopDNSIfIdle(network string) error {
	unlock, err := s.lock()
	if err != nil {
		return err
	}
	defer unlock()
	if recs, _ := s.Records(network); len(recs) > 0 {
		return nil
	}
	return s.stopDNSLocked(network)
}

func (s *Store) stopDNSLocked(network string) error {
	if pid := s.dnsRunning(network); pid != 0 {
		_ = unix.Kill(pid, unix.SIGTERM)
		for i := 0; i < 100 && unix.Kill(pid, 0) == nil; i++ {
			time.Sleep(10 * time.Millisecond)
		}
		_ = unix.Kill(pid, unix.SIGKILL)
	}
	if err := os.Remove(s.dnsPidFile(network)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// DNSMain is the DNS server process: `--dir DIR --listen IP:PORT`. It
// reports "ok" (or "error …") on fd 3 when that is a pipe, forwards to the
// host's resolvers, and ends on SIGTERM or when its records directory is
// removed (the network was).
func DNSMain(args []string) error {
	fs := flag.NewFlagSet("dns-serve", flag.ContinueOnError)
	dir := fs.String("dir", "", "records directory")
	listen := fs.String("listen", "", "address:port to serve")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ap, err := netip.ParseAddrPort(*listen)
	if err != nil || *dir == "" {
		return fmt.Errorf("dns-serve: --dir and --listen IP:PORT are required: %w", errdefs.ErrInvalidArgument)
	}
	var status io.WriteCloser
	if f := os.NewFile(3, "status"); f != nil {
		if _, err := f.Stat(); err == nil {
			status = f
		}
	}
	report := func(msg string) {
		if status != nil {
			_, _ = io.WriteString(status, msg+"\n")
			status.Close()
			status = nil
		}
	}
	hostConf, _ := os.ReadFile("/etc/resolv.conf")
	var upstreams []string
	for _, u := range Upstreams(hostConf) {
		// Never forward to ourselves.
		if u != ap.String() {
			upstreams = append(upstreams, u)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		for ctx.Err() == nil {
			time.Sleep(2 * time.Second)
			if _, err := os.Stat(*dir); errors.Is(err, os.ErrNotExist) {
				stop()
			}
		}
	}()
	err = ServeDNS(ctx, *dir, ap, upstreams, func() { report("ok") })
	if err != nil {
		report("error " + err.Error())
	}
	return err
}
