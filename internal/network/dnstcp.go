package network

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"
)

// DNS over TCP (RFC 7766): each message is preceded by its length in two
// bytes; a client may send several queries on one connection. Clients
// come here after a truncated UDP reply, or by choice.

const (
	// tcpIdle closes a connection that sends nothing for this long.
	tcpIdle = 10 * time.Second
	// tcpConns bounds the connections served at once: a container that
	// opens connections and never closes them cannot starve the others
	// of more than this many goroutines and descriptors.
	tcpConns = 128
)

func (d *dnsServer) serveStream(ctx context.Context, ln net.Listener) error {
	defer ln.Close()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	slots := make(chan struct{}, tcpConns)
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("dns: %w", err)
		}
		select {
		case slots <- struct{}{}:
		default:
			c.Close() // full: the client retries or falls back
			continue
		}
		go func() {
			defer func() { <-slots }()
			d.serveConn(ctx, c)
		}()
	}
}

// serveConn answers the queries on one connection in order until the
// client closes it, goes idle or sends garbage.
func (d *dnsServer) serveConn(ctx context.Context, c net.Conn) {
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	var src netip.Addr
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		src = ta.AddrPort().Addr().Unmap()
	}
	for {
		_ = c.SetDeadline(time.Now().Add(tcpIdle))
		req, err := readTCPMessage(c)
		if err != nil {
			return
		}
		reply, fwd := d.answer(req, src, false)
		if fwd {
			reply = d.forward(req, true)
		}
		if reply == nil {
			return // not a query we can parse
		}
		if err := writeTCPMessage(c, reply); err != nil {
			return
		}
	}
}

func readTCPMessage(r io.Reader) ([]byte, error) {
	var l [2]byte
	if _, err := io.ReadFull(r, l[:]); err != nil {
		return nil, err
	}
	msg := make([]byte, binary.BigEndian.Uint16(l[:]))
	if _, err := io.ReadFull(r, msg); err != nil {
		return nil, err
	}
	return msg, nil
}

func writeTCPMessage(w io.Writer, msg []byte) error {
	if len(msg) > 0xffff {
		return fmt.Errorf("dns message of %d bytes", len(msg))
	}
	b := make([]byte, 2, 2+len(msg))
	binary.BigEndian.PutUint16(b, uint16(len(msg)))
	_, err := w.Write(append(b, msg...))
	return err
}

// exchangeTCP sends one query to upstream over TCP and reads its reply.
func exchangeTCP(upstream string, req []byte) ([]byte, error) {
	c, err := net.DialTimeout("tcp", upstream, time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if err := writeTCPMessage(c, req); err != nil {
		return nil, err
	}
	return readTCPMessage(c)
}
