package engine

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/moby/moby/api/types/container"
	nettypes "github.com/moby/moby/api/types/network"
)

func TestCreateEndpoints(t *testing.T) {
	mac := nettypes.HardwareAddr{0x02, 0x42, 0xac, 0x11, 0, 0x02}
	ip4 := netip.MustParseAddr("10.89.0.9")
	ip6 := netip.MustParseAddr("fd00::9")
	eps := func(m map[string]*nettypes.EndpointSettings) *nettypes.NetworkingConfig {
		return &nettypes.NetworkingConfig{EndpointsConfig: m}
	}
	// same stands in for the network store: "app" has the ID "4f2a...".
	same := func(a, b string) bool {
		canon := func(s string) string {
			if strings.HasPrefix("4f2a9c", s) && len(s) >= 4 {
				return "app"
			}
			return s
		}
		return canon(a) == canon(b)
	}
	for _, tc := range []struct {
		name string
		mode string
		nc   *nettypes.NetworkingConfig
		want map[string]*nettypes.EndpointSettings
		err  string // "" when it must succeed
	}{
		{name: "none given", mode: "app", nc: nil, want: nil},
		{name: "empty map", mode: "app", nc: eps(nil), want: nil},
		{name: "user network alias ip mac", mode: "app",
			nc:   eps(map[string]*nettypes.EndpointSettings{"app": {Aliases: []string{"a", "b"}, MacAddress: mac, IPAMConfig: &nettypes.EndpointIPAMConfig{IPv4Address: ip4}, NetworkID: "ignored"}}),
			want: map[string]*nettypes.EndpointSettings{"app": {Aliases: []string{"a", "b"}, MacAddress: mac, IPAMConfig: &nettypes.EndpointIPAMConfig{IPv4Address: ip4}}}},
		{name: "ipv6 address", mode: "app",
			nc:   eps(map[string]*nettypes.EndpointSettings{"app": {IPAMConfig: &nettypes.EndpointIPAMConfig{IPv6Address: ip6}}}),
			want: map[string]*nettypes.EndpointSettings{"app": {IPAMConfig: &nettypes.EndpointIPAMConfig{IPv6Address: ip6}}}},
		{name: "keyed by network ID prefix", mode: "app",
			nc:   eps(map[string]*nettypes.EndpointSettings{"4f2a": {Aliases: []string{"x"}}}),
			want: map[string]*nettypes.EndpointSettings{"app": {Aliases: []string{"x"}}}},
		{name: "docker CLI's empty host endpoint", mode: "host",
			nc:   eps(map[string]*nettypes.EndpointSettings{"host": {}}),
			want: map[string]*nettypes.EndpointSettings{"host": {}}},
		{name: "default mode is the bridge", mode: "",
			nc:   eps(map[string]*nettypes.EndpointSettings{"bridge": {MacAddress: mac}}),
			want: map[string]*nettypes.EndpointSettings{"bridge": {MacAddress: mac}}},
		{name: "two endpoints", mode: "app",
			nc:  eps(map[string]*nettypes.EndpointSettings{"app": {}, "other": {}}),
			err: "Container cannot be connected to network endpoints: app, other"},
		{name: "endpoint of another network", mode: "app",
			nc:  eps(map[string]*nettypes.EndpointSettings{"other": {}}),
			err: "invalid config for network other: the container's network mode is app"},
		{name: "nil settings", mode: "app",
			nc:  eps(map[string]*nettypes.EndpointSettings{"app": nil}),
			err: "EndpointsConfig is nil"},
		{name: "ip on the default bridge", mode: "bridge",
			nc:  eps(map[string]*nettypes.EndpointSettings{"bridge": {IPAMConfig: &nettypes.EndpointIPAMConfig{IPv4Address: ip4}}}),
			err: "user specified IP address is supported on user defined networks only"},
		{name: "alias on the default bridge", mode: "default",
			nc:  eps(map[string]*nettypes.EndpointSettings{"default": {Aliases: []string{"a"}}}),
			err: "network-scoped alias is supported only for containers in user defined networks"},
		{name: "alias on host", mode: "host",
			nc:  eps(map[string]*nettypes.EndpointSettings{"host": {Aliases: []string{"a"}}}),
			err: "network-scoped alias is supported only"},
		{name: "mac with container mode", mode: "container:web",
			nc:  eps(map[string]*nettypes.EndpointSettings{"container:web": {MacAddress: mac}}),
			err: "conflicting options: mac-address and the network mode"},
		{name: "ipv6 as IPv4Address", mode: "app",
			nc:  eps(map[string]*nettypes.EndpointSettings{"app": {IPAMConfig: &nettypes.EndpointIPAMConfig{IPv4Address: ip6}}}),
			err: "invalid IPv4 address: fd00::9"},
		{name: "unspecified IPv4Address", mode: "app",
			nc:  eps(map[string]*nettypes.EndpointSettings{"app": {IPAMConfig: &nettypes.EndpointIPAMConfig{IPv4Address: netip.IPv4Unspecified()}}}),
			err: "invalid IPv4 address: 0.0.0.0"},
		{name: "ipv4 as IPv6Address", mode: "app",
			nc:  eps(map[string]*nettypes.EndpointSettings{"app": {IPAMConfig: &nettypes.EndpointIPAMConfig{IPv6Address: ip4}}}),
			err: "invalid IPv6 address: 10.89.0.9"},
		{name: "both static addresses", mode: "app",
			nc:   eps(map[string]*nettypes.EndpointSettings{"app": {IPAMConfig: &nettypes.EndpointIPAMConfig{IPv4Address: ip4, IPv6Address: ip6}}}),
			want: map[string]*nettypes.EndpointSettings{"app": {IPAMConfig: &nettypes.EndpointIPAMConfig{IPv4Address: ip4, IPv6Address: ip6}}}},
		{name: "link-local addresses", mode: "app",
			nc:  eps(map[string]*nettypes.EndpointSettings{"app": {IPAMConfig: &nettypes.EndpointIPAMConfig{LinkLocalIPs: []netip.Addr{netip.MustParseAddr("169.254.1.1")}}}}),
			err: "link-local addresses are not supported"},
		{name: "driver options", mode: "app",
			nc:  eps(map[string]*nettypes.EndpointSettings{"app": {DriverOpts: map[string]string{"k": "v"}}}),
			err: "endpoint driver options are not supported"},
		{name: "empty alias", mode: "app",
			nc:  eps(map[string]*nettypes.EndpointSettings{"app": {Aliases: []string{""}}}),
			err: "empty network alias"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hc := container.HostConfig{NetworkMode: container.NetworkMode(tc.mode)}
			got, err := createEndpoints(&hc, tc.nc, same)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Fatalf("err = %v, want invalid argument containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %#v, want %#v", got, tc.want)
			}
		})
	}
}

// TestReadNetRecordFromCreate checks that a container never started gets
// its network record from the create request's endpoint settings, and
// one recorded by an older build from its labels.
func TestReadNetRecordFromCreate(t *testing.T) {
	e := &Engine{opts: Options{Root: t.TempDir()}}
	mac := nettypes.HardwareAddr{0x02, 0x42, 0xac, 0x11, 0, 0x02}
	for _, tc := range []struct {
		name string
		c    *Container
		want *netEndpoint
	}{
		{"create request", &Container{ID: newID(), HostConfig: container.HostConfig{NetworkMode: "app"},
			Endpoints: map[string]*nettypes.EndpointSettings{"app": {Aliases: []string{"a"}, MacAddress: mac, IPAMConfig: &nettypes.EndpointIPAMConfig{IPv6Address: netip.MustParseAddr("fd00::9")}}}},
			&netEndpoint{Aliases: []string{"a"}, MAC: "02:42:ac:11:00:02", IP: netip.MustParseAddr("fd00::9")}},
		{"labels of an older build", &Container{ID: newID(), HostConfig: container.HostConfig{NetworkMode: "app"},
			Config: container.Config{Labels: map[string]string{legacyLabelNetworkIP: "10.89.0.9", legacyLabelNetworkAliases: "a,b", legacyLabelNetworkMAC: "02:42:ac:11:00:02"}}},
			&netEndpoint{Aliases: []string{"a", "b"}, MAC: "02:42:ac:11:00:02", IP: netip.MustParseAddr("10.89.0.9")}},
		{"nothing configured", &Container{ID: newID(), HostConfig: container.HostConfig{NetworkMode: "app"}},
			&netEndpoint{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec, err := e.readNetRecord(tc.c)
			if err != nil {
				t.Fatal(err)
			}
			if len(rec.Endpoints) != 1 || !reflect.DeepEqual(rec.Endpoints["app"], tc.want) {
				t.Fatalf("endpoints %#v, want app: %#v", rec.Endpoints, tc.want)
			}
			es := e.networkSettings(tc.c).Networks["app"]
			if es == nil || !reflect.DeepEqual(es.Aliases, tc.want.Aliases) || es.MacAddress.String() != tc.want.MAC {
				t.Fatalf("inspect's endpoint: %#v", es)
			}
			if tc.want.IP.IsValid() && (es.IPAMConfig == nil || (es.IPAMConfig.IPv4Address != tc.want.IP && es.IPAMConfig.IPv6Address != tc.want.IP)) {
				t.Fatalf("inspect's IPAMConfig: %#v", es.IPAMConfig)
			}
		})
	}
}
