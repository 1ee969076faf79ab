package network

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

// TestNativeDecision: which networks the built-in driver runs (no root
// needed: the decision reads files only).
func TestNativeDecision(t *testing.T) {
	old := SubnetClaimDir
	SubnetClaimDir = filepath.Join(t.TempDir(), "claims")
	t.Cleanup(func() { SubnetClaimDir = old })
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, s *Store, n *Network)
		native bool
	}{
		{"as created", func(*testing.T, *Store, *Network) {}, true},
		{"conflist edited", func(t *testing.T, s *Store, n *Network) {
			b, _ := os.ReadFile(s.confPath(n.Name))
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			m["plugins"] = append(m["plugins"].([]any), map[string]any{"type": "bandwidth"})
			b, _ = json.Marshal(m)
			if err := os.WriteFile(s.confPath(n.Name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"conflist removed", func(t *testing.T, s *Store, n *Network) { _ = os.Remove(s.confPath(n.Name)) }, false},
		{"made by an older berth", func(t *testing.T, s *Store, n *Network) { n.Native = false }, false},
		{"another state directory", func(t *testing.T, s *Store, n *Network) {
			s.opts.State = filepath.Join(t.TempDir(), "other")
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := Open(Options{Root: filepath.Join(dir, "root"), State: filepath.Join(dir, "state")})
			if err != nil {
				t.Fatal(err)
			}
			n, err := s.Create("n1", CreateOptions{Subnet: "10.250.1.0/24"})
			if err != nil {
				t.Fatal(err)
			}
			tc.change(t, s, n)
			if got := s.Native(n); got != tc.native {
				t.Fatalf("Native = %v, want %v", got, tc.native)
			}
		})
	}
}

// TestSubnetClaims: two stores (two instances) creating networks at the
// same time never get the same subnet, and rm releases the claim.
func TestSubnetClaims(t *testing.T) {
	old := SubnetClaimDir
	SubnetClaimDir = filepath.Join(t.TempDir(), "claims")
	t.Cleanup(func() { SubnetClaimDir = old })
	open := func() *Store {
		dir := t.TempDir()
		s, err := Open(Options{Root: filepath.Join(dir, "root"), State: filepath.Join(dir, "state")})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	a, b := open(), open()
	type res struct {
		n   *Network
		err error
	}
	ch := make(chan res, 20)
	for i := range 10 {
		for _, s := range []*Store{a, b} {
			go func() {
				n, err := s.Create(fmt.Sprint("n", i), CreateOptions{IPv6: true})
				ch <- res{n, err}
			}()
		}
	}
	seen := map[netip.Prefix]string{}
	for range 20 {
		r := <-ch
		if r.err != nil {
			t.Fatal(r.err)
		}
		for _, p := range []netip.Prefix{r.n.Subnet, r.n.Subnet6} {
			if o, dup := seen[p]; dup {
				t.Fatalf("%s given to %s and %s", p, o, r.n.ID[:12])
			}
			seen[p] = r.n.ID[:12]
		}
	}
	n, _ := a.Get("n0")
	if err := a.Remove("n0"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(SubnetClaimDir, claimName(n.Subnet))); !os.IsNotExist(err) {
		t.Fatalf("claim of %s left after rm: %v", n.Subnet, err)
	}
}
