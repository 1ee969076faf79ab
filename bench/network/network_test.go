//go:build linux

// Package network measures what berth's networking costs a container:
// the setup and teardown a `run` pays on a bridge network (namespace +
// the native driver's attach, then DetachAll and the namespace's removal)
// against --network none (namespace only), and TCP throughput through a
// published port (DNAT, no userland proxy). The network's bridge and
// rules are set up once before the timed loop, as they are once per
// network in use.
//
//	go test -run XXX -bench . ./bench/network      (root)
//
// The same comparison through the CLI against podman and docker belongs in
// bench/run's script once `berth run --network` is wired.
package network

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/network"
	"github.com/berth-dev/berth/internal/testutil"
)

func newStore(b testing.TB) (*network.Store, *network.Network, string) {
	testutil.RequiresRoot(b)
	if _, err := os.Stat("/usr/lib/cni/bridge"); err != nil {
		b.Skip("containernetworking-plugins is not installed")
	}
	dir := b.TempDir()
	state := filepath.Join(dir, "state")
	s, err := network.Open(network.Options{Root: filepath.Join(dir, "root"), State: state})
	if err != nil {
		b.Fatal(err)
	}
	n, err := s.Create("bench", network.CreateOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.RemoveAll() })
	return s, n, state
}

func id() string {
	var x [32]byte
	_, _ = rand.Read(x[:])
	return hex.EncodeToString(x[:])
}

// BenchmarkNone is --network none: a namespace with lo up, then removed.
func BenchmarkNone(b *testing.B) {
	_, _, state := newStore(b)
	var times []time.Duration
	defer func() { reportMedian(b, times) }()
	for b.Loop() {
		t0 := time.Now()
		p := filepath.Join(state, "netns", id())
		if err := network.NewNetNS(p); err != nil {
			b.Fatal(err)
		}
		if err := network.RemoveNetNS(p); err != nil {
			b.Fatal(err)
		}
		times = append(times, time.Since(t0))
	}
}

// reportMedian adds the median iteration as "median-ms": on a shared,
// loaded machine the mean follows the worst iterations (the RTNL lock
// other processes hold), the median what an attach costs.
func reportMedian(b *testing.B, times []time.Duration) {
	if len(times) == 0 {
		return
	}
	slices.Sort(times)
	b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "median-ms")
}

// BenchmarkBridge is the default bridge: namespace, CNI ADD, DEL, removal.
func BenchmarkBridge(b *testing.B) {
	benchAttach(b, nil)
}

// BenchmarkBridgePublished adds one published port (portmap's chains).
func BenchmarkBridgePublished(b *testing.B) {
	benchAttach(b, []network.PortMapping{{ContainerPort: 80, Protocol: "tcp"}})
}

func benchAttach(b *testing.B, ports []network.PortMapping) {
	s, n, state := newStore(b)
	ctx := context.Background()
	attachOnce(b, s, n, state, nil) // the bridge and the network's rules
	var times []time.Duration
	defer func() { reportMedian(b, times) }()
	for b.Loop() {
		t0 := time.Now()
		cid := id()
		p := filepath.Join(state, "netns", cid)
		if err := network.NewNetNS(p); err != nil {
			b.Fatal(err)
		}
		if _, err := s.Attach(ctx, n, network.Attachment{ContainerID: cid, NetNS: p, Ports: ports}); err != nil {
			b.Fatal(err)
		}
		if err := s.DetachAll(ctx, cid); err != nil {
			b.Fatal(err)
		}
		if err := network.RemoveNetNS(p); err != nil {
			b.Fatal(err)
		}
		times = append(times, time.Since(t0))
	}
}

// attachOnce attaches and detaches one container.
func attachOnce(b *testing.B, s *network.Store, n *network.Network, state string, ports []network.PortMapping) {
	ctx := context.Background()
	cid := id()
	p := filepath.Join(state, "netns", cid)
	if err := network.NewNetNS(p); err != nil {
		b.Fatal(err)
	}
	defer network.RemoveNetNS(p)
	if _, err := s.Attach(ctx, n, network.Attachment{ContainerID: cid, NetNS: p, Ports: ports}); err != nil {
		b.Fatal(err)
	}
	if err := s.DetachAll(ctx, cid); err != nil {
		b.Fatal(err)
	}
}

// listenIn opens a TCP listener inside the namespace at ns.
func listenIn(ns, addr string) (l net.Listener, err error) {
	err = network.InNetNS(ns, func() (err error) {
		l, err = net.Listen("tcp", addr)
		return err
	})
	return l, err
}

// BenchmarkPublishedPortThroughput streams 64 MiB per iteration from the
// host to a server in a container namespace through 127.0.0.1:HOSTPORT.
func BenchmarkPublishedPortThroughput(b *testing.B) {
	s, n, state := newStore(b)
	ctx := context.Background()
	cid := id()
	p := filepath.Join(state, "netns", cid)
	if err := network.NewNetNS(p); err != nil {
		b.Fatal(err)
	}
	defer network.RemoveNetNS(p)
	r, err := s.Attach(ctx, n, network.Attachment{ContainerID: cid, NetNS: p, Ports: []network.PortMapping{{ContainerPort: 5201, Protocol: "tcp"}}})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Detach(ctx, "", cid, "")
	l, err := listenIn(p, ":5201")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	const size = 64 << 20
	buf := make([]byte, 1<<20)
	b.SetBytes(size)
	addr := fmt.Sprintf("127.0.0.1:%d", r.Ports[0].HostPort)
	for b.Loop() {
		var c net.Conn
		for i := 0; i < 50; i++ {
			if c, err = net.DialTimeout("tcp", addr, time.Second); err == nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			b.Fatal(err)
		}
		for sent := 0; sent < size; sent += len(buf) {
			if _, err := c.Write(buf); err != nil {
				b.Fatal(err)
			}
		}
		c.Close()
	}
}
