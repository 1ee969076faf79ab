// Package netclean removes the networks a test's berth instance created:
// the default network of an instance whose --root is not the default one
// is a bridge of its own (br-<hash>) with isolation and masquerade rules,
// and nothing in the instance's temporary directories going away removes
// those from the host. Test environments that run containers call Remove
// once their containers are gone.
//
// It is a package of its own, not part of testutil, because
// internal/network's own tests import testutil.
package netclean

import "github.com/berth-dev/berth/internal/network"

// Remove deletes every network of the instance at root/state, the default
// one included, with its bridge, rules and DNS server.
func Remove(root, state string) error {
	s, err := network.Open(network.Options{Root: root, State: state})
	if err != nil {
		return err
	}
	return s.RemoveAll()
}
