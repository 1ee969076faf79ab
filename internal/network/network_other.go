//go:build !linux

package network

import (
	"context"
	"fmt"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Networks need Linux (namespaces, bridges, iptables); elsewhere the
// store reads and writes configurations and attaching fails clearly.

var errNotLinux = fmt.Errorf("container networking needs Linux: %w", errdefs.ErrNotSupported)

func (s *Store) stopDNSLocked(string) error { return nil }
func removeIsolation(*Network) error        { return nil }
func removeNetworkRules(*Network)           {}
func deleteLink(string)                     {}

func NewNetNS(string) error    { return errNotLinux }
func RemoveNetNS(string) error { return nil }
func IsNetNS(string) bool      { return false }

func SweepContainerRules(string) error { return nil }

func (s *Store) Attach(context.Context, *Network, Attachment) (*Result, error) {
	return nil, errNotLinux
}
func (s *Store) Detach(context.Context, string, string, string) error { return nil }
func (s *Store) DetachAll(context.Context, string) error              { return nil }
func (s *Store) DetachUncached(context.Context, *Network, string, string, string, []PortMapping) error {
	return nil
}
func (s *Store) Attachments(string) ([]AttachmentInfo, error) {
	return nil, nil
}
func (s *Store) EnsureDNS(*Network, string) error { return errNotLinux }
func (s *Store) StopDNSIfIdle(string) error       { return nil }
func DNSMain([]string) error                      { return errNotLinux }

// SweepReport lists what a sweep removed (sweep_linux.go).
type SweepReport struct {
	Rules  []string
	Chains []string
}

// SweepStaleRules has nothing to sweep where berth makes no rules.
func SweepStaleRules() (SweepReport, error) { return SweepReport{}, nil }

func sweepIfSuspected() {}
