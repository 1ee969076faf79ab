package engine

import (
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
)

// TestDNSNames: dockerd's DNSNames order — name, aliases, short ID,
// hostname — with each name once.
func TestDNSNames(t *testing.T) {
	const id = "0123456789ab0123456789ab0123456789ab0123456789ab0123456789abcdef"
	for _, tc := range []struct {
		name, hostname string
		aliases, want  []string
	}{
		{name: "default hostname", hostname: id[:12], aliases: []string{"web", "db"}, want: []string{"c1", "web", "db", id[:12]}},
		{name: "own hostname", hostname: "h1", want: []string{"c1", id[:12], "h1"}},
		{name: "alias repeats the name", hostname: "c1", aliases: []string{"c1", "web", "web"}, want: []string{"c1", "web", id[:12]}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &Container{ID: id, Name: "c1", Config: container.Config{Hostname: tc.hostname}}
			if got := dnsNames(c, tc.aliases); strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("dnsNames = %q, want %q", got, tc.want)
			}
		})
	}
}
