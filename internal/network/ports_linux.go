package network

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
)

// portsDir holds one file per host port a container of this state
// directory publishes: the DNAT rules of portmap take a port without
// binding it, so a second container asking for it must be told here.
func (s *Store) portsDir() string { return filepath.Join(s.opts.State, "network", "ports") }

func portFile(p PortMapping) string {
	ip := p.HostIP
	if ip == "" {
		ip = "any"
	}
	return fmt.Sprintf("%s-%s-%d", p.Protocol, strings.ReplaceAll(ip, ":", "_"), p.HostPort)
}

// reservePorts checks and reserves the host ports of ms for containerID:
// a port bound by a host process (a bind() test) or published by another
// container is a Conflict error. Ports 0 get a free port from the kernel.
// It returns the mappings with their ports filled in.
func (s *Store) reservePorts(containerID string, ms []PortMapping) (_ []PortMapping, retErr error) {
	if len(ms) == 0 {
		return nil, nil
	}
	if err := os.MkdirAll(s.portsDir(), 0o711); err != nil {
		return nil, err
	}
	out := make([]PortMapping, 0, len(ms))
	defer func() {
		if retErr != nil {
			s.releasePorts(containerID, out)
		}
	}()
	for _, m := range ms {
		if m.Protocol == "" {
			m.Protocol = "tcp"
		}
		for try := 0; ; try++ {
			want := m.HostPort
			port, err := probePort(m)
			if err != nil {
				return nil, err
			}
			m.HostPort = port
			err = s.claimPort(containerID, m)
			if err == nil {
				break
			}
			if want != 0 || try > 20 {
				return nil, err
			}
			m.HostPort = 0 // a free port another container reserved: pick again
		}
		out = append(out, m)
	}
	return out, nil
}

// claimPort creates the port's reservation file (O_EXCL makes two
// containers racing for one port see a winner), reclaiming one whose
// owner no longer has a CNI attachment.
func (s *Store) claimPort(containerID string, m PortMapping) error {
	path := filepath.Join(s.portsDir(), portFile(m))
	for range 2 {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			_, werr := f.WriteString(containerID)
			f.Close()
			return werr
		}
		if !errors.Is(err, os.ErrExist) {
			return err
		}
		owner, _ := os.ReadFile(path)
		if string(owner) == containerID {
			return nil
		}
		if atts, _ := s.Attachments(string(owner)); len(atts) > 0 || len(owner) == 0 {
			return fmt.Errorf("Bind for %s:%d failed: port is already allocated: %w", hostIPOrAny(m.HostIP), m.HostPort, errdefs.ErrConflict)
		}
		_ = os.Remove(path) // a leftover of a crashed container
	}
	return fmt.Errorf("Bind for %s:%d failed: port is already allocated: %w", hostIPOrAny(m.HostIP), m.HostPort, errdefs.ErrConflict)
}

func hostIPOrAny(ip string) string {
	if ip == "" {
		return "0.0.0.0"
	}
	return ip
}

// probePort binds the host port (or a free one when 0) and releases it at
// once: a host process listening there would never see the DNATed
// traffic, so publishing over it must fail now.
func probePort(m PortMapping) (uint16, error) {
	addr := net.JoinHostPort(m.HostIP, strconv.Itoa(int(m.HostPort)))
	var port int
	switch m.Protocol {
	case "udp":
		c, err := net.ListenPacket("udp", addr)
		if err != nil {
			return 0, fmt.Errorf("publish %s: %w: %w", m, err, errdefs.ErrConflict)
		}
		port = c.LocalAddr().(*net.UDPAddr).Port
		c.Close()
	case "tcp", "sctp":
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return 0, fmt.Errorf("publish %s: %w: %w", m, err, errdefs.ErrConflict)
		}
		port = l.Addr().(*net.TCPAddr).Port
		l.Close()
	default:
		return 0, fmt.Errorf("publish %s: unknown protocol %q: %w", m, m.Protocol, errdefs.ErrInvalidArgument)
	}
	return uint16(port), nil
}

// releasePorts drops containerID's reservations (all of them when ms is nil).
func (s *Store) releasePorts(containerID string, ms []PortMapping) {
	if ms != nil {
		for _, m := range ms {
			p := filepath.Join(s.portsDir(), portFile(m))
			if b, _ := os.ReadFile(p); string(b) == containerID {
				_ = os.Remove(p)
			}
		}
		return
	}
	ents, _ := os.ReadDir(s.portsDir())
	for _, e := range ents {
		p := filepath.Join(s.portsDir(), e.Name())
		if b, _ := os.ReadFile(p); string(b) == containerID {
			_ = os.Remove(p)
		}
	}
}
