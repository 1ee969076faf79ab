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
		check func(t *testing.T, cfg *container.Config, hc *container.HostConfig)
		err   string
	}{
		{"user network endpoint", []string{"--network", "app", "--ip", "10.89.0.9", "--network-alias", "a", "--network-alias", "b", "--mac-address", "02:42:ac:11:00:02"},
			func(t *testing.T, cfg *container.Config, hc *container.HostConfig) {
				if hc.NetworkMode != "app" || cfg.Labels[engine.LabelNetworkIP] != "10.89.0.9" || cfg.Labels[engine.LabelNetworkAliases] != "a,b" || cfg.Labels[engine.LabelNetworkMAC] != "02:42:ac:11:00:02" {
					t.Fatalf("%v %v", hc.NetworkMode, cfg.Labels)
				}
			}, ""},
		{"publish exposes", []string{"-p", "8080:80", "-P", "--expose", "90-91"},
			func(t *testing.T, cfg *container.Config, hc *container.HostConfig) {
				if len(hc.PortBindings[nettypes.MustParsePort("80/tcp")]) != 1 || !hc.PublishAllPorts || len(cfg.ExposedPorts) != 3 {
					t.Fatalf("%v %v", hc.PortBindings, cfg.ExposedPorts)
				}
			}, ""},
		{"dns", []string{"--dns", "192.0.2.1", "--dns-search", "x.test", "--add-host", "db:192.0.2.7"},
			func(t *testing.T, cfg *container.Config, hc *container.HostConfig) {
				if len(hc.DNS) != 1 || hc.DNS[0] != netip.MustParseAddr("192.0.2.1") || hc.DNSSearch[0] != "x.test" || hc.ExtraHosts[0] != "db:192.0.2.7" {
					t.Fatalf("%+v", hc)
				}
			}, ""},
		{"ip on the default bridge", []string{"--ip", "10.88.0.9"}, nil, "user defined networks only"},
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
			var cfg container.Config
			var hc container.HostConfig
			err := o.apply(&cfg, &hc)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, &cfg, &hc)
		})
	}
}
