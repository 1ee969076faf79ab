//go:build linux

package network_test

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/network"
)

// dialIn dials address from inside the network namespace at nsPath: a
// locked thread enters it for the socket's creation and connect (a
// socket stays in the namespace it was made in), then returns.
func dialIn(ctx context.Context, nsPath, proto, address string) (c net.Conn, err error) {
	err = network.InNetNS(nsPath, func() (err error) {
		var d net.Dialer
		c, err = d.DialContext(ctx, proto, address)
		return err
	})
	return c, err
}

// TestUserNetworkDNSOverTCP resolves names and aliases of a user-defined
// network with Go's DNS client over TCP from inside a container's network
// namespace: the network's DNS server answers on TCP port 53 too.
func TestUserNetworkDNSOverTCP(t *testing.T) {
	e := newEnv(t)
	e.ok("network", "create", "tcpdns")
	e.ok("run", "-d", "--name", "named", "--network", "tcpdns", "--network-alias", "nick", "busybox", "sleep", "300")
	e.ok("run", "-d", "--name", "asker", "--network", "tcpdns", "busybox", "sleep", "300")
	gw := strings.TrimSpace(e.ok("network", "inspect", "tcpdns", "--format", "{{(index .IPAM.Config 0).Gateway}}"))
	ip, askerIP := e.ipOf("named"), e.ipOf("asker")
	id := strings.TrimSpace(e.ok("inspect", "--format", "{{.Id}}", "asker"))
	nsPath := filepath.Join(e.state, "netns", id)
	if _, err := os.Stat(nsPath); err != nil {
		t.Fatalf("namespace of asker: %v", err)
	}
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return dialIn(ctx, nsPath, "tcp", net.JoinHostPort(gw, "53"))
	}}
	for _, name := range []string{"named", "nick", id[:12]} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		got, err := r.LookupHost(ctx, name)
		cancel()
		if err != nil {
			t.Fatalf("%s over tcp: %v", name, err)
		}
		want := ip
		if name == id[:12] {
			want = askerIP // the short ID names the asker itself
		}
		if !slices.Contains(got, want) {
			t.Fatalf("%s over tcp: %v, want %s", name, got, want)
		}
	}
	// A raw exchange too: length-prefixed, the connection kept for a
	// second query (RFC 7766 pipelining).
	c, err := dialIn(context.Background(), nsPath, "tcp", net.JoinHostPort(gw, "53"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	for i, name := range []string{"named", "nick"} {
		q := query(uint16(100+i), name)
		if _, err := c.Write(append([]byte{byte(len(q) >> 8), byte(len(q))}, q...)); err != nil {
			t.Fatal(err)
		}
		var l [2]byte
		if _, err := io.ReadFull(c, l[:]); err != nil {
			t.Fatalf("query %d: %v", i, err)
		}
		reply := make([]byte, int(l[0])<<8|int(l[1]))
		if _, err := io.ReadFull(c, reply); err != nil {
			t.Fatal(err)
		}
		if id := int(reply[0])<<8 | int(reply[1]); id != 100+i || !strings.Contains(string(reply), string(net.ParseIP(ip).To4())) {
			t.Fatalf("query %d: reply id %d, %x", i, id, reply)
		}
	}
	e.ok("rm", "-f", "named", "asker")
	e.ok("network", "rm", "tcpdns")
}

// query is a DNS A query for name (one label) with id.
func query(id uint16, name string) []byte {
	b := []byte{byte(id >> 8), byte(id), 1, 0, 0, 1, 0, 0, 0, 0, 0, 0}
	b = append(b, byte(len(name)))
	b = append(b, name...)
	return append(b, 0, 0, 1, 0, 1)
}
