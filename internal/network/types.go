package network

import (
	"fmt"
	"net/netip"
)

// Attachment asks for one container interface on one network.
type Attachment struct {
	ContainerID string
	NetNS       string // the namespace path (NewNetNS)
	IfName      string // eth0, eth1, …
	// IPv4 and IPv6 are static addresses (`--ip`, `--ip6`); an invalid
	// (zero) one lets IPAM choose. Both are reserved or neither.
	IPv4  netip.Addr
	IPv6  netip.Addr
	MAC   string
	Ports []PortMapping
}

// Result is what an attachment got.
type Result struct {
	Network  string
	IfName   string
	MAC      string
	IPv4     netip.Prefix
	Gateway  netip.Addr
	IPv6     netip.Prefix
	Gateway6 netip.Addr
	Ports    []PortMapping
}

// PortMapping publishes a container port on the host (portmap's
// portMappings). HostPort 0 asks for a free port.
type PortMapping struct {
	HostIP        string `json:",omitempty"`
	HostPort      uint16
	ContainerPort uint16
	Protocol      string // tcp, udp, sctp
}

func (p PortMapping) String() string {
	return fmt.Sprintf("%s:%d->%d/%s", p.HostIP, p.HostPort, p.ContainerPort, p.Protocol)
}

// DNSCommand is the hidden subcommand of berth that runs a network's DNS
// server (DNSMain).
var DNSCommand = []string{"network", "dns-serve"}
