package cli

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/engine"
	"github.com/moby/moby/api/types/container"
	nettypes "github.com/moby/moby/api/types/network"
	"github.com/spf13/pflag"
)

func TestParsePublish(t *testing.T) {
	for _, tc := range []struct {
		name, spec string
		want       []string // port=hostIP:hostPort
		err        string
	}{
		{"container only", "80", []string{"80/tcp=:"}, ""},
		{"host and container", "8080:80", []string{"80/tcp=:8080"}, ""},
		{"ip", "127.0.0.1:8080:80/udp", []string{"80/udp=127.0.0.1:8080"}, ""},
		{"ip random port", "127.0.0.1::80", []string{"80/tcp=127.0.0.1:"}, ""},
		{"ipv6", "[::1]:8080:80", []string{"80/tcp=::1:8080"}, ""},
		{"ranges", "8000-8001:80-81", []string{"80/tcp=:8000", "81/tcp=:8001"}, ""},
		{"container range", "80-81", []string{"80/tcp=:", "81/tcp=:"}, ""},
		{"mismatched ranges", "8000-8002:80-81", nil, "invalid ranges"},
		{"bad proto", "80/icmp", nil, "invalid proto"},
		{"bad port", "http", nil, "invalid containerPort"},
		{"bad ip", "x:80:80", nil, "invalid IP"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parsePublish(tc.spec)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var s []string
			for _, b := range got {
				ip := ""
				if b.binding.HostIP.IsValid() {
					ip = b.binding.HostIP.String()
				}
				s = append(s, b.port.String()+"="+ip+":"+b.binding.HostPort)
			}
			if strings.Join(s, " ") != strings.Join(tc.want, " ") {
				t.Fatalf("got %v, want %v", s, tc.want)
			}
		})
	}
}

func TestNetFlagsApply(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  []string
		check func(t *testing.T, cfg *container.Config, hc *container.HostConfig, nc *nettypes.NetworkingConfig)
		err   string
	}{
		{"user network endpoint", []string{"--network", "app", "--ip", "10.89.0.9", "--network-alias", "a", "--network-alias", "b", "--mac-address", "02:42:ac:11:00:02"},
			func(t *testing.T, cfg *container.Config, hc *container.HostConfig, nc *nettypes.NetworkingConfig) {
				if hc.NetworkMode != "app" || len(cfg.Labels) != 0 || nc == nil || len(nc.EndpointsConfig) != 1 {
					t.Fatalf("%v %v %+v", hc.NetworkMode, cfg.Labels, nc)
				}
				es := nc.EndpointsConfig["app"]
				if es == nil || es.IPAMConfig == nil || es.IPAMConfig.IPv4Address != netip.MustParseAddr("10.89.0.9") || es.IPAMConfig.IPv6Address.IsValid() ||
					strings.Join(es.Aliases, ",") != "a,b" || es.MacAddress.String() != "02:42:ac:11:00:02" {
					t.Fatalf("endpoint %+v", es)
				}
			}, ""},
		{"ipv6 endpoint", []string{"--network", "app", "--ip6", "fd00::9"},
			func(t *testing.T, cfg *container.Config, hc *container.HostConfig, nc *nettypes.NetworkingConfig) {
				es := nc.EndpointsConfig["app"]
				if es == nil || es.IPAMConfig.IPv6Address != netip.MustParseAddr("fd00::9") || es.IPAMConfig.IPv4Address.IsValid() {
					t.Fatalf("endpoint %+v", es)
				}
			}, ""},
		{"mac on the default network", []string{"--mac-address", "02:42:ac:11:00:02"},
			func(t *testing.T, cfg *container.Config, hc *container.HostConfig, nc *nettypes.NetworkingConfig) {
				if es := nc.EndpointsConfig["default"]; es == nil || es.MacAddress.String() != "02:42:ac:11:00:02" {
					t.Fatalf("%+v", nc)
				}
			}, ""},
		{"no endpoint settings", []string{"--network", "app"},
			func(t *testing.T, cfg *container.Config, hc *container.HostConfig, nc *nettypes.NetworkingConfig) {
				if nc != nil {
					t.Fatalf("%+v", nc)
				}
			}, ""},
		{"publish exposes", []string{"-p", "8080:80", "-P", "--expose", "90-91"},
			func(t *testing.T, cfg *container.Config, hc *container.HostConfig, _ *nettypes.NetworkingConfig) {
				if len(hc.PortBindings[nettypes.MustParsePort("80/tcp")]) != 1 || !hc.PublishAllPorts || len(cfg.ExposedPorts) != 3 {
					t.Fatalf("%v %v", hc.PortBindings, cfg.ExposedPorts)
				}
			}, ""},
		{"dns", []string{"--dns", "192.0.2.1", "--dns-search", "x.test", "--add-host", "db:192.0.2.7"},
			func(t *testing.T, cfg *container.Config, hc *container.HostConfig, _ *nettypes.NetworkingConfig) {
				if len(hc.DNS) != 1 || hc.DNS[0] != netip.MustParseAddr("192.0.2.1") || hc.DNSSearch[0] != "x.test" || hc.ExtraHosts[0] != "db:192.0.2.7" {
					t.Fatalf("%+v", hc)
				}
			}, ""},
		{"bad ip", []string{"--network", "app", "--ip", "10.88.0.300"}, nil, "invalid IP address"},
		{"alias on the default network", []string{"--network-alias", "x"}, nil, "user-defined networks"},
		{"alias on host", []string{"--network", "host", "--network-alias", "x"}, nil, "user-defined networks"},
		{"publish with host", []string{"--network", "host", "-p", "80"}, nil, "conflicting options"},
		{"bad dns", []string{"--dns", "nameserver"}, nil, "not an ip address"},
		{"bad add-host", []string{"--add-host", "nohost"}, nil, "invalid extra host"},
		{"bad mac", []string{"--mac-address", "zz"}, nil, "invalid MAC"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fl := pflag.NewFlagSet("run", pflag.ContinueOnError)
			var o netFlags
			registerNetworkFlags(fl, &o)
			if err := fl.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			var co engine.CreateOptions
			err := o.apply(&co)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, &co.Config, &co.HostConfig, co.NetworkingConfig)
		})
	}
}
