package network

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth/internal/atomicfile"
)

// AttachmentInfo names one attachment of a container: what Detach tears
// down, whichever driver made it.
type AttachmentInfo struct {
	ContainerID string
	Network     string
	IfName      string
}

// endpoint is the record of one native attachment,
// <state>/network/endpoints/<container ID>/<ifname>.json. It is written
// before the attachment touches the kernel, so a process killed at any
// point of Attach leaves a record the next Detach finds; everything
// teardown removes is named by the container ID and interface (the host
// veth, the leases, the port chain), so the record needs nothing that
// only a finished attach knows.
type endpoint struct {
	ContainerID string
	Network     string
	IfName      string
	Bridge      string
	NetNS       string        `json:",omitempty"`
	Ports       []PortMapping `json:",omitempty"`
	// IPv6: the network is dual-stack, so published ports have rules in
	// ip6tables too.
	IPv6 bool `json:",omitempty"`
}

func (s *Store) endpointsDir() string { return filepath.Join(s.opts.State, "network", "endpoints") }

func (s *Store) endpointPath(containerID, ifName string) string {
	return filepath.Join(s.endpointsDir(), containerID, ifName+".json")
}

func (s *Store) writeEndpoint(ep *endpoint) error {
	b, err := json.Marshal(ep)
	if err != nil {
		return err
	}
	p := s.endpointPath(ep.ContainerID, ep.IfName)
	if err := os.MkdirAll(filepath.Dir(p), 0o711); err != nil {
		return err
	}
	// The state directory is a tmpfs that a reboot clears together with
	// what the record describes: no fsync.
	return atomicfile.Write(p, b, 0o600)
}

// endpoints lists the native attachments of containerID, or of every
// container when containerID is "".
func (s *Store) endpoints(containerID string) ([]*endpoint, error) {
	var dirs []string
	if containerID != "" {
		dirs = []string{filepath.Join(s.endpointsDir(), containerID)}
	} else {
		ents, err := os.ReadDir(s.endpointsDir())
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		for _, e := range ents {
			dirs = append(dirs, filepath.Join(s.endpointsDir(), e.Name()))
		}
	}
	var out []*endpoint
	for _, d := range dirs {
		ents, err := os.ReadDir(d)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			if !strings.HasSuffix(e.Name(), ".json") || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			b, err := os.ReadFile(filepath.Join(d, e.Name()))
			if err != nil {
				continue // removed meanwhile
			}
			var ep endpoint
			if err := json.Unmarshal(b, &ep); err != nil {
				return nil, fmt.Errorf("endpoint record %s: %w", filepath.Join(d, e.Name()), err)
			}
			out = append(out, &ep)
		}
	}
	return out, nil
}

// removeEndpoint deletes a record, and the container's directory once it
// is empty.
func (s *Store) removeEndpoint(containerID, ifName string) error {
	if err := os.Remove(s.endpointPath(containerID, ifName)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	_ = os.Remove(filepath.Join(s.endpointsDir(), containerID)) // fails while not empty
	return nil
}

// Native reports whether berth attaches containers to n itself (see the
// package documentation) rather than through the CNI plugins: n was created by
// this version (n.Native) and its conflist is still the one berth
// generated from n. A user who edits or replaces the conflist, and every
// network an older berth created, gets the CNI plugins.
func (s *Store) Native(n *Network) bool {
	if !n.Native {
		return false
	}
	have, err := os.ReadFile(s.confPath(n.Name))
	if err != nil {
		return false
	}
	// The conflist names host-local's lease directory, which follows the
	// state directory of whoever created the network: compare with the
	// one it names, so another --state does not count as an edit.
	var conf struct {
		Plugins []struct {
			IPAM struct {
				DataDir string `json:"dataDir"`
			} `json:"ipam"`
		} `json:"plugins"`
	}
	if json.Unmarshal(have, &conf) != nil || len(conf.Plugins) == 0 || conf.Plugins[0].IPAM.DataDir == "" {
		return false
	}
	want, err := n.conflist(conf.Plugins[0].IPAM.DataDir)
	return err == nil && bytes.Equal(bytes.TrimSpace(have), bytes.TrimSpace(want))
}

// ipamOf is the allocator of native network name.
func (s *Store) ipamOf(name string) ipam { return ipam{dir: filepath.Join(s.ipamDir(), name)} }

// Leases lists the addresses a native network has handed out and the
// containers holding them.
func (s *Store) Leases(name string) (map[netip.Addr]string, error) {
	return s.ipamOf(name).leases()
}
