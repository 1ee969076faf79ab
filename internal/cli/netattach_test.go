package cli

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	nettypes "github.com/moby/moby/api/types/network"
)

func TestEndpointsConfig(t *testing.T) {
	hw := nettypes.HardwareAddr{0x02, 0x42, 0xac, 0x11, 0, 0x09}
	for _, tc := range []struct {
		name string
		o    netFlags
		mode string
		want map[string]*nettypes.EndpointSettings
		err  string
	}{
		{name: "nothing", want: map[string]*nettypes.EndpointSettings{}},
		{name: "legacy flags on the default network", o: netFlags{mac: "02:42:ac:11:00:09"},
			want: map[string]*nettypes.EndpointSettings{"default": {MacAddress: hw}}},
		{name: "one network without settings sends no endpoint", o: netFlags{networks: []string{"a"}}, mode: "a",
			want: map[string]*nettypes.EndpointSettings{}},
		{name: "two networks, legacy flags on the first", o: netFlags{networks: []string{"a", "b"}, aliases: []string{"x"}, ip: "10.89.0.9"}, mode: "a",
			want: map[string]*nettypes.EndpointSettings{
				"a": {Aliases: []string{"x"}, IPAMConfig: &nettypes.EndpointIPAMConfig{IPv4Address: netip.MustParseAddr("10.89.0.9")}},
				"b": {}}},
		{name: "advanced syntax", o: netFlags{networks: []string{"name=a,alias=x,alias=y,ip6=fd00::9,mac-address=02:42:ac:11:00:09,driver-opt=k=v"}}, mode: "a",
			want: map[string]*nettypes.EndpointSettings{"a": {Aliases: []string{"x", "y"}, MacAddress: hw, DriverOpts: map[string]string{"k": "v"},
				IPAMConfig: &nettypes.EndpointIPAMConfig{IPv6Address: netip.MustParseAddr("fd00::9")}}}},
		{name: "twice", o: netFlags{networks: []string{"a", "a"}}, err: `network "a" is specified multiple times`},
		{name: "built-in beside user-defined", o: netFlags{networks: []string{"bridge", "a"}}, err: "cannot attach both user-defined and non-user-defined"},
		{name: "ip both ways", o: netFlags{networks: []string{"name=a,ip=10.89.0.9"}, ip: "10.89.0.8"}, err: "cannot specify both --ip and per-network IPv4 address"},
		{name: "alias both ways", o: netFlags{networks: []string{"name=a,alias=x"}, aliases: []string{"y"}}, err: "cannot specify both --network-alias and per-network alias"},
		{name: "no name", o: netFlags{networks: []string{"alias=x"}}, err: "network name/id is not specified"},
		{name: "unknown key", o: netFlags{networks: []string{"name=a,colour=blue"}}, err: "invalid field key colour"},
		{name: "bad mac", o: netFlags{networks: []string{"name=a,mac-address=zz"}}, err: "invalid MAC address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mode, eps, err := tc.o.endpointsConfig()
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if mode != tc.mode || !reflect.DeepEqual(eps, tc.want) {
				t.Fatalf("mode %q, endpoints %#v; want %q, %#v", mode, eps, tc.mode, tc.want)
			}
		})
	}
}
