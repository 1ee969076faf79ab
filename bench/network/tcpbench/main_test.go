package main

import (
	"net"
	"testing"
	"time"
)

// TestMeasure runs client and server over loopback: the rate comes from
// the server's count, and failures are errors rather than a zero rate.
func TestMeasure(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() { _ = serveListener(l) }()

	// A listener that accepts and closes without answering, as a proxy
	// whose backend is gone does.
	mute, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer mute.Close()
	go func() {
		for {
			c, err := mute.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()

	// A port nothing listens on.
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()

	tests := []struct {
		name    string
		addr    string
		wantErr bool
	}{
		{"server", l.Addr().String(), false},
		{"no answer", mute.Addr().String(), true},
		{"refused", closedAddr, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			gbps, err := measure(tc.addr, 200*time.Millisecond, 300*time.Millisecond)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("measure(%s) = %.3f Gbit/s, want an error", tc.addr, gbps)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// Loopback moves well over 10 Mbit/s on any machine that runs
			// this; a broken count would give 0 or an absurd value.
			if gbps < 0.01 || gbps > 1000 {
				t.Fatalf("measure over loopback = %.3f Gbit/s, want a plausible rate", gbps)
			}
		})
	}
}
