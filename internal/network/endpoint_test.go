package network

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// TestNativeDecision: which networks the built-in driver runs (no root
// needed: the decision reads files only).
func TestNativeDecision(t *testing.T) {
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
