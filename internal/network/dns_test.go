package network

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// dnsFixture serves a records directory on 127.0.0.1, UDP and TCP on the
// same port, with an upstream (a second server of the same kind whose
// records are the "outside world") for names it does not know. The
// upstream answers over UDP from upUDP and over TCP from upTCP, so a
// test sees which way a query was forwarded. It returns the port.
func dnsFixture(t *testing.T, recs, upUDP, upTCP []Record) int {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	write := func(recs []Record) string {
		dir := t.TempDir()
		for _, r := range recs {
			b, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, r.ID+".json"), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	serve := func(udpRecs, tcpRecs []Record, upstreams []string) int {
		udpDir, tcpDir := write(udpRecs), write(tcpRecs)
		// UDP first on a free port, then TCP on the same one (free on
		// loopback but for a race with another test: retried).
		for range 20 {
			pc, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			port := pc.LocalAddr().(*net.UDPAddr).Port
			ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
			if err != nil {
				pc.Close()
				continue
			}
			go func() { _ = ServeDNSConn(ctx, pc, udpDir, upstreams) }()
			go func() { _ = ServeDNSListener(ctx, ln, tcpDir, upstreams) }()
			return port
		}
		t.Fatal("no free port for UDP and TCP")
		return 0
	}
	up := serve(upUDP, upTCP, nil)
	return serve(recs, recs, []string{fmt.Sprintf("127.0.0.1:%d", up)})
}

// resolver is Go's own DNS client against port: over UDP with its
// retry over TCP on truncation, or (tcpOnly) over TCP from the start.
func resolver(port int, tcpOnly bool) *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		if tcpOnly {
			network = "tcp"
		}
		var d net.Dialer
		return d.DialContext(ctx, network, fmt.Sprintf("127.0.0.1:%d", port))
	}}
}

func TestDNSOverTCP(t *testing.T) {
	var recs []Record
	var many []string
	for i := range 60 {
		a := netip.AddrFrom4([4]byte{10, 77, byte(i / 200), byte(2 + i%200)})
		r := Record{ID: fmt.Sprintf("%04x", i+1) + strings.Repeat("ab", 30), Name: fmt.Sprintf("ctr%d", i), Aliases: []string{"many"}, IPv4: a}
		if i == 0 {
			r.Aliases = append(r.Aliases, "www")
		}
		recs = append(recs, r)
		many = append(many, a.String())
	}
	outUDP := []Record{{ID: "up", Name: "far.example", IPv4: netip.MustParseAddr("192.0.2.8")}}
	outTCP := []Record{{ID: "up", Name: "far.example", IPv4: netip.MustParseAddr("192.0.2.9")}}
	port := dnsFixture(t, recs, outUDP, outTCP)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tests := []struct {
		name    string
		host    string
		tcpOnly bool
		want    []string
	}{
		{"name over tcp", "ctr3", true, []string{"10.77.0.5"}},
		{"alias over tcp", "www", true, []string{"10.77.0.2"}},
		{"short id over tcp", "0005abababab", true, []string{"10.77.0.6"}},
		{"forwarded over tcp", "far.example", true, []string{"192.0.2.9"}},
		{"forwarded over udp", "far.example", false, []string{"192.0.2.8"}},
		{"large answer over tcp", "many", true, many},
		// 60 A records do not fit 512 bytes: the UDP reply is truncated
		// and Go's client asks again over TCP.
		{"large answer after truncation", "many", false, many},
		{"name over udp", "ctr7", false, []string{"10.77.0.9"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := resolver(port, tt.tcpOnly).LookupHost(ctx, tt.host)
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(got)
			want := slices.Clone(tt.want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("got %v, want %v", got, want)
			}
		})
	}
}

// TestDNSTruncation checks the UDP reply itself: TC and no answers when
// the answer exceeds 512 bytes, the whole answer when the query's EDNS
// record allows its size.
func TestDNSTruncation(t *testing.T) {
	var recs []Record
	for i := range 60 {
		recs = append(recs, Record{ID: fmt.Sprintf("%064x", i+1), Name: fmt.Sprintf("c%d", i), Aliases: []string{"many"},
			IPv4: netip.AddrFrom4([4]byte{10, 78, 0, byte(2 + i)})})
	}
	port := dnsFixture(t, recs, nil, nil)
	for _, tt := range []struct {
		name      string
		edns      int
		truncated bool
		answers   int
	}{
		{"plain", 0, true, 0},
		{"edns 512", 512, true, 0},
		{"edns 4096", 4096, false, 60},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: 7, RecursionDesired: true})
			_ = b.StartQuestions()
			_ = b.Question(dnsmessage.Question{Name: dnsmessage.MustNewName("many."), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET})
			if tt.edns > 0 {
				_ = b.StartAdditionals()
				var rh dnsmessage.ResourceHeader
				if err := rh.SetEDNS0(tt.edns, dnsmessage.RCodeSuccess, false); err != nil {
					t.Fatal(err)
				}
				_ = b.OPTResource(rh, dnsmessage.OPTResource{})
			}
			q, err := b.Finish()
			if err != nil {
				t.Fatal(err)
			}
			c, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", port))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Write(q); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 65535)
			n, err := c.Read(buf)
			if err != nil {
				t.Fatal(err)
			}
			var m dnsmessage.Message
			if err := m.Unpack(buf[:n]); err != nil {
				t.Fatal(err)
			}
			if m.Header.Truncated != tt.truncated || len(m.Answers) != tt.answers || m.Header.ID != 7 {
				t.Fatalf("TC=%v answers=%d id=%d (%d bytes), want TC=%v answers=%d", m.Header.Truncated, len(m.Answers), m.Header.ID, n, tt.truncated, tt.answers)
			}
			if len(m.Questions) != 1 || !strings.EqualFold(m.Questions[0].Name.String(), "many.") {
				t.Fatalf("question: %v", m.Questions)
			}
		})
	}
}
