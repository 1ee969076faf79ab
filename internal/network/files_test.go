package network

import (
	"net/netip"
	"testing"
)

func TestHostsEntries(t *testing.T) {
	base := string(HostsFile("web", "", []netip.Addr{netip.MustParseAddr("10.89.0.2")}, []HostEntry{{IP: "10.89.1.7", Names: []string{"db"}}}))
	head := "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" +
		"fe00::\tip6-localnet\nff00::\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"
	tests := []struct {
		name, in string
		ip       string
		names    string
		add      bool
		want     string
	}{
		{"add after own line", base, "10.89.1.5", "web", true,
			head + "10.89.0.2\tweb\n10.89.1.5\tweb\n10.89.1.7\tdb\n"},
		{"add present", base, "10.89.0.2", "web", true, base},
		{"add without own line", head, "10.89.1.5", "web.example web", true,
			head + "10.89.1.5\tweb.example web\n"},
		{"add to unterminated", "127.0.0.1 localhost", "10.89.1.5", "web", true,
			"127.0.0.1 localhost\n10.89.1.5\tweb\n"},
		{"remove own line", head + "10.89.0.2\tweb\n10.89.1.5\tweb\n10.89.1.7\tdb\n", "10.89.1.5", "web", false,
			head + "10.89.0.2\tweb\n10.89.1.7\tdb\n"},
		{"remove keeps add-host of the same address", head + "10.89.1.5  web\n10.89.1.5\tdb\n", "10.89.1.5", "web", false,
			head + "10.89.1.5\tdb\n"},
		{"remove absent", base, "10.89.9.9", "web", false, base},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ip := netip.MustParseAddr(tt.ip)
			var got []byte
			if tt.add {
				got = AddHostsEntry([]byte(tt.in), ip, tt.names)
			} else {
				got = RemoveHostsEntry([]byte(tt.in), ip, tt.names)
			}
			if string(got) != tt.want {
				t.Fatalf("got:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}
