package network

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// Record is one container's DNS entry on a network.
type Record struct {
	ID      string
	Name    string
	Aliases []string `json:",omitempty"`
	IPv4    netip.Addr
	IPv6    netip.Addr `json:",omitzero"`
}

// AddRecord publishes r on network's DNS. It reports how many records the
// network has afterwards.
func (s *Store) AddRecord(network string, r Record) (int, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return 0, err
	}
	dir := s.DNSDir(network)
	if err := writeFileAtomic(filepath.Join(dir, r.ID+".json"), b, 0o644); err != nil {
		return 0, err
	}
	recs, err := readRecords(dir)
	return len(recs), err
}

// RemoveRecord withdraws a container's record and reports how many are left.
func (s *Store) RemoveRecord(network, id string) (int, error) {
	dir := s.DNSDir(network)
	if err := os.Remove(filepath.Join(dir, id+".json")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return 0, err
	}
	recs, err := readRecords(dir)
	return len(recs), err
}

// Records lists the records of a network.
func (s *Store) Records(network string) ([]Record, error) { return readRecords(s.DNSDir(network)) }

func readRecords(dir string) ([]Record, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Record
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".json") || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		var r Record
		if json.Unmarshal(b, &r) == nil {
			out = append(out, r)
		}
	}
	return out, nil
}

// lookup finds the records that answer name: a container's name, one of
// its aliases, or a prefix of its ID of at least 12 digits (the short ID).
func lookup(recs []Record, name string) []Record {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	var out []Record
	for _, r := range recs {
		match := strings.EqualFold(r.Name, name) || len(name) >= 12 && strings.HasPrefix(r.ID, name)
		for _, a := range r.Aliases {
			match = match || strings.EqualFold(a, name)
		}
		if match {
			out = append(out, r)
		}
	}
	return out
}

// dnsServer answers from a records directory and forwards the rest. A
// querier attached to several networks also sees the containers of its
// other networks (as with Docker's embedded DNS): the records of every
// sibling directory that holds the querier's own record are added.
type dnsServer struct {
	dir       string
	upstreams []string

	mu    sync.Mutex
	cache map[string]dirCache
}

type dirCache struct {
	modTime time.Time
	recs    []Record
}

// recordsIn re-reads a directory when its mtime changed (adding or
// removing a record file renames into or unlinks from it).
func (d *dnsServer) recordsIn(dir string) []Record {
	st, err := os.Stat(dir)
	if err != nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cache == nil {
		d.cache = map[string]dirCache{}
	}
	c, ok := d.cache[dir]
	if !ok || !st.ModTime().Equal(c.modTime) {
		c.recs, _ = readRecords(dir)
		c.modTime = st.ModTime()
		d.cache[dir] = c
	}
	return c.recs
}

// visible lists the records a querier from address from may resolve.
func (d *dnsServer) visible(from netip.Addr) []Record {
	recs := d.recordsIn(d.dir)
	var self string
	for _, r := range recs {
		if r.IPv4 == from || (r.IPv6.IsValid() && r.IPv6 == from) {
			self = r.ID
		}
	}
	if self == "" {
		return recs
	}
	siblings, _ := os.ReadDir(filepath.Dir(d.dir))
	out := append([]Record(nil), recs...)
	for _, s := range siblings {
		dir := filepath.Join(filepath.Dir(d.dir), s.Name())
		if !s.IsDir() || dir == d.dir {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, self+".json")); err == nil {
			out = append(out, d.recordsIn(dir)...)
		}
	}
	return out
}

// udpMinSize is what every DNS client takes over UDP (RFC 1035); EDNS
// clients announce more in their OPT record.
const udpMinSize = 512

// answer builds the reply to one query from from; forward is true when
// the name is not ours and the query should go upstream instead. A reply
// over UDP (udp) that does not fit the client's size (512 bytes, or its
// EDNS payload size) goes out truncated: TC set and no answers, so the
// client asks again over TCP, which has no limit.
func (d *dnsServer) answer(req []byte, from netip.Addr, udp bool) (reply []byte, forward bool) {
	var p dnsmessage.Parser
	h, err := p.Start(req)
	if err != nil {
		return nil, false
	}
	q, err := p.Question()
	if err != nil {
		return nil, false
	}
	hits := lookup(d.visible(from), q.Name.String())
	if len(hits) == 0 {
		return nil, true
	}
	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired, RecursionAvailable: true}
	b := dnsmessage.NewBuilder(nil, rh)
	b.EnableCompression()
	_ = b.StartQuestions()
	_ = b.Question(q)
	_ = b.StartAnswers()
	rrh := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 600}
	for _, r := range hits {
		switch {
		case q.Type == dnsmessage.TypeA && r.IPv4.Is4():
			_ = b.AResource(rrh, dnsmessage.AResource{A: r.IPv4.As4()})
		case q.Type == dnsmessage.TypeAAAA && r.IPv6.Is6():
			_ = b.AAAAResource(rrh, dnsmessage.AAAAResource{AAAA: r.IPv6.As16()})
		}
	}
	out, err := b.Finish()
	if err != nil {
		return nil, false
	}
	if udp && len(out) > udpSize(&p) {
		rh.Truncated = true
		b := dnsmessage.NewBuilder(nil, rh)
		_ = b.StartQuestions()
		_ = b.Question(q)
		if out, err = b.Finish(); err != nil {
			return nil, false
		}
	}
	return out, false
}

// udpSize is the largest UDP reply the client of the query p has parsed
// up to its first question takes: its EDNS OPT record's payload size, at
// least 512 bytes.
func udpSize(p *dnsmessage.Parser) int {
	if p.SkipAllQuestions() != nil || p.SkipAllAnswers() != nil || p.SkipAllAuthorities() != nil {
		return udpMinSize
	}
	for {
		h, err := p.AdditionalHeader()
		if err != nil {
			return udpMinSize
		}
		if h.Type == dnsmessage.TypeOPT {
			return max(udpMinSize, int(h.Class))
		}
		if p.SkipAdditional() != nil {
			return udpMinSize
		}
	}
}

// forward relays a query to the first upstream that answers, over TCP
// when the client asked over TCP (a reply too big for UDP comes back
// whole), else over UDP (the upstream truncates for the client itself).
func (d *dnsServer) forward(req []byte, tcp bool) []byte {
	for _, u := range d.upstreams {
		var r []byte
		var err error
		if tcp {
			r, err = exchangeTCP(u, req)
		} else {
			r, err = exchangeUDP(u, req)
		}
		if err == nil {
			return r
		}
	}
	// No upstream answered: SERVFAIL, so the client does not wait.
	var p dnsmessage.Parser
	h, err := p.Start(req)
	if err != nil {
		return nil
	}
	q, err := p.Question()
	if err != nil {
		return nil
	}
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, RCode: dnsmessage.RCodeServerFailure, RecursionDesired: h.RecursionDesired})
	_ = b.StartQuestions()
	_ = b.Question(q)
	out, _ := b.Finish()
	return out
}

func exchangeUDP(upstream string, req []byte) ([]byte, error) {
	c, err := net.DialTimeout("udp", upstream, time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write(req); err != nil {
		return nil, err
	}
	buf := make([]byte, 65535)
	n, err := c.Read(buf)
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}

// ServeDNS serves the records in dir on listen (UDP and TCP) until ctx
// ends, forwarding names it does not know to upstreams (host:port).
// ready, if not nil, is called once both sockets are bound.
func ServeDNS(ctx context.Context, dir string, listen netip.AddrPort, upstreams []string, ready func()) error {
	pc, err := net.ListenPacket("udp", listen.String())
	if err != nil {
		return fmt.Errorf("dns: %w", err)
	}
	ln, err := net.Listen("tcp", listen.String())
	if err != nil {
		pc.Close()
		return fmt.Errorf("dns: %w", err)
	}
	if ready != nil {
		ready()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	d := &dnsServer{dir: dir, upstreams: upstreams}
	errc := make(chan error, 2)
	go func() { errc <- d.serveStream(ctx, ln) }()
	go func() { errc <- d.servePacket(ctx, pc) }()
	// Either one failing ends both.
	err = <-errc
	cancel()
	return errors.Join(err, <-errc)
}

// ServeDNSConn is ServeDNS over UDP only, on a socket the caller made (in
// whatever network namespace it was created in). It closes pc.
func ServeDNSConn(ctx context.Context, pc net.PacketConn, dir string, upstreams []string) error {
	return (&dnsServer{dir: dir, upstreams: upstreams}).servePacket(ctx, pc)
}

// ServeDNSListener is ServeDNS over TCP only, on a listener the caller
// made. It closes ln.
func ServeDNSListener(ctx context.Context, ln net.Listener, dir string, upstreams []string) error {
	return (&dnsServer{dir: dir, upstreams: upstreams}).serveStream(ctx, ln)
}

func (d *dnsServer) servePacket(ctx context.Context, pc net.PacketConn) error {
	defer pc.Close()
	stop := context.AfterFunc(ctx, func() { pc.Close() })
	defer stop()
	buf := make([]byte, 65535)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("dns: %w", err)
		}
		req := append([]byte(nil), buf[:n]...)
		var src netip.Addr
		if ua, ok := from.(*net.UDPAddr); ok {
			src = ua.AddrPort().Addr().Unmap()
		}
		reply, fwd := d.answer(req, src, true)
		if fwd {
			// Forwarding waits on the network: off the read loop.
			go func() {
				if r := d.forward(req, false); r != nil {
					_, _ = pc.WriteTo(r, from)
				}
			}()
			continue
		}
		if reply != nil {
			_, _ = pc.WriteTo(reply, from)
		}
	}
}
