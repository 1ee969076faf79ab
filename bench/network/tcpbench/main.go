// Command tcpbench measures one-way TCP throughput between a client and a
// server: the network benchmark's traffic generator. It is built static
// (CGO_ENABLED=0) so the same binary runs on the host and, bind-mounted,
// inside a busybox container of any engine.
//
//	tcpbench server [-l :5201]
//	tcpbench client -c HOST:PORT [-t 3s] [-wait 20s]
//
// The server accepts connections forever; on each it discards what it
// reads until the client half-closes, then answers with the byte count
// (8 bytes, big endian). The client writes 128 KiB buffers for -t, closes
// its write side, and prints the rate in Gbit/s computed from the server's
// count and the time until that answer arrived: bytes still in the socket
// buffers when the writer stops are not counted as delivered, and a proxy
// in between (docker-proxy) cannot inflate the number by buffering.
package main

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"time"
)

// bufSize is what iperf3 uses for TCP by default: large enough that the
// cost per write() does not limit a loopback or veth path.
const bufSize = 128 << 10

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: tcpbench server [-l ADDR] | client -c ADDR [-t DURATION] [-wait DURATION]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "server":
		fs := flag.NewFlagSet("server", flag.ExitOnError)
		listen := fs.String("l", ":5201", "listen address")
		_ = fs.Parse(os.Args[2:])
		err = serve(*listen)
	case "client":
		fs := flag.NewFlagSet("client", flag.ExitOnError)
		addr := fs.String("c", "", "server address HOST:PORT")
		dur := fs.Duration("t", 3*time.Second, "how long to send")
		wait := fs.Duration("wait", 20*time.Second, "how long to retry connecting (the server may still be starting)")
		_ = fs.Parse(os.Args[2:])
		if *addr == "" {
			err = errors.New("client: -c HOST:PORT is required")
			break
		}
		var gbps float64
		gbps, err = measure(*addr, *dur, *wait)
		if err == nil {
			fmt.Printf("%.3f\n", gbps)
		}
	default:
		err = fmt.Errorf("unknown mode %q (server or client)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "tcpbench:", err)
		os.Exit(1)
	}
}

func serve(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	return serveListener(l)
}

// serveListener answers connections on l until it is closed.
func serveListener(l net.Listener) error {
	for {
		c, err := l.Accept()
		if err != nil {
			return fmt.Errorf("accept on %s: %w", l.Addr(), err)
		}
		go sink(c)
	}
}

// sink counts what c delivers until EOF and reports the count back.
func sink(c net.Conn) {
	defer c.Close()
	buf := make([]byte, bufSize)
	var n int64
	for {
		m, err := c.Read(buf)
		n += int64(m)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				fmt.Fprintf(os.Stderr, "tcpbench: read from %s: %v\n", c.RemoteAddr(), err)
				return
			}
			break
		}
	}
	var out [8]byte
	binary.BigEndian.PutUint64(out[:], uint64(n))
	if _, err := c.Write(out[:]); err != nil {
		fmt.Fprintf(os.Stderr, "tcpbench: reply to %s: %v\n", c.RemoteAddr(), err)
	}
}

// dial connects to addr, retrying refused or unreachable connections until
// wait has passed: a container's server or a published port's forwarding
// may come up a moment after the engine returned.
func dial(addr string, wait time.Duration) (*net.TCPConn, error) {
	deadline := time.Now().Add(wait)
	for {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err == nil {
			return c.(*net.TCPConn), nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("connect %s: %w", addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// measure sends to addr for dur and returns the delivered rate in Gbit/s.
func measure(addr string, dur, wait time.Duration) (float64, error) {
	c, err := dial(addr, wait)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	buf := make([]byte, bufSize)
	start := time.Now()
	stop := start.Add(dur)
	for time.Now().Before(stop) {
		if _, err := c.Write(buf); err != nil {
			return 0, fmt.Errorf("write to %s: %w", addr, err)
		}
	}
	if err := c.CloseWrite(); err != nil {
		return 0, fmt.Errorf("shutdown write to %s: %w", addr, err)
	}
	var in [8]byte
	// A proxy that accepted the connection but lost its backend closes
	// without answering: that is an error, not zero throughput.
	if _, err := io.ReadFull(c, in[:]); err != nil {
		return 0, fmt.Errorf("read byte count from %s: %w", addr, err)
	}
	elapsed := time.Since(start)
	n := binary.BigEndian.Uint64(in[:])
	if n == 0 {
		return 0, fmt.Errorf("%s received nothing", addr)
	}
	return float64(n) * 8 / elapsed.Seconds() / 1e9, nil
}
