package api

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/engine"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	nettypes "github.com/moby/moby/api/types/network"
)

func TestCreateCompat(t *testing.T) {
	const mac = "02:42:ac:11:00:09"
	hw := nettypes.HardwareAddr{0x02, 0x42, 0xac, 0x11, 0, 0x09}
	twoNets := func() *nettypes.NetworkingConfig {
		return &nettypes.NetworkingConfig{EndpointsConfig: map[string]*nettypes.EndpointSettings{"a": {}, "b": {}}}
	}
	forceRRO := []mount.Mount{{Type: mount.TypeBind, Source: "/s", Target: "/t", ReadOnly: true, BindOptions: &mount.BindOptions{ReadOnlyForceRecursive: true}}}
	for _, tc := range []struct {
		name    string
		version string
		opts    engine.CreateOptions
		mac     string
		check   func(t *testing.T, o *engine.CreateOptions, warnings []string)
		err     string
	}{
		{name: "1.43 read-only binds stay non-recursive, start interval dropped", version: "1.43",
			opts: engine.CreateOptions{Config: container.Config{Healthcheck: &container.HealthConfig{StartInterval: time.Second}}},
			check: func(t *testing.T, o *engine.CreateOptions, w []string) {
				if !o.ReadOnlyNonRecursive || o.Config.Healthcheck.StartInterval != 0 || len(w) != 0 {
					t.Fatalf("%+v %v", o, w)
				}
			}},
		{name: "1.44 keeps both", version: "1.44",
			opts: engine.CreateOptions{Config: container.Config{Healthcheck: &container.HealthConfig{StartInterval: time.Second}}},
			check: func(t *testing.T, o *engine.CreateOptions, w []string) {
				if o.ReadOnlyNonRecursive || o.Config.Healthcheck.StartInterval != time.Second {
					t.Fatalf("%+v", o)
				}
			}},
		{name: "1.43 force recursive", version: "1.43", opts: engine.CreateOptions{HostConfig: container.HostConfig{Mounts: forceRRO}},
			err: "BindOptions.ReadOnlyForceRecursive needs API v1.44 or newer"},
		{name: "1.44 force recursive", version: "1.44", opts: engine.CreateOptions{HostConfig: container.HostConfig{Mounts: forceRRO}},
			check: func(t *testing.T, o *engine.CreateOptions, _ []string) {
				if o.ReadOnlyNonRecursive || !o.HostConfig.Mounts[0].BindOptions.ReadOnlyForceRecursive {
					t.Fatalf("%+v", o)
				}
			}},
		{name: "1.43 two networks", version: "1.43", opts: engine.CreateOptions{NetworkingConfig: twoNets()},
			err: "Container cannot be created with multiple network endpoints: a, b"},
		{name: "1.44 two networks", version: "1.44", opts: engine.CreateOptions{NetworkingConfig: twoNets()},
			check: func(t *testing.T, o *engine.CreateOptions, _ []string) {
				if len(o.NetworkingConfig.EndpointsConfig) != 2 {
					t.Fatalf("%+v", o.NetworkingConfig)
				}
			}},
		{name: "1.43 container-wide MAC moves to the mode's endpoint", version: "1.43", mac: mac,
			opts: engine.CreateOptions{HostConfig: container.HostConfig{NetworkMode: "app"}},
			check: func(t *testing.T, o *engine.CreateOptions, w []string) {
				if es := o.NetworkingConfig.EndpointsConfig["app"]; es == nil || es.MacAddress.String() != mac || len(w) != 0 {
					t.Fatalf("%+v %v", o.NetworkingConfig, w)
				}
			}},
		{name: "1.43 ignores an endpoint's MAC", version: "1.43",
			opts: engine.CreateOptions{NetworkingConfig: &nettypes.NetworkingConfig{EndpointsConfig: map[string]*nettypes.EndpointSettings{"app": {MacAddress: hw}}}},
			check: func(t *testing.T, o *engine.CreateOptions, _ []string) {
				if es := o.NetworkingConfig.EndpointsConfig["app"]; len(es.MacAddress) != 0 {
					t.Fatalf("%+v", es)
				}
			}},
		{name: "1.44 container-wide MAC warns", version: "1.44", mac: mac,
			opts: engine.CreateOptions{HostConfig: container.HostConfig{NetworkMode: "app"}},
			check: func(t *testing.T, o *engine.CreateOptions, w []string) {
				if es := o.NetworkingConfig.EndpointsConfig["app"]; es == nil || es.MacAddress.String() != mac || len(w) != 1 || w[0] != deprecatedMACWarning {
					t.Fatalf("%+v %v", o.NetworkingConfig, w)
				}
			}},
		{name: "1.44 container-wide MAC dropped in host mode", version: "1.44", mac: mac,
			opts: engine.CreateOptions{HostConfig: container.HostConfig{NetworkMode: "host"}},
			check: func(t *testing.T, o *engine.CreateOptions, w []string) {
				if o.NetworkingConfig != nil || len(w) != 1 {
					t.Fatalf("%+v %v", o.NetworkingConfig, w)
				}
			}},
		{name: "1.44 MACs that differ", version: "1.44", mac: "02:42:ac:11:00:0a",
			opts: engine.CreateOptions{HostConfig: container.HostConfig{NetworkMode: "app"},
				NetworkingConfig: &nettypes.NetworkingConfig{EndpointsConfig: map[string]*nettypes.EndpointSettings{"app": {MacAddress: hw}}}},
			err: "differ"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.opts
			w, err := createCompat(tc.version, &o, tc.mac)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Fatalf("err = %v, want invalid argument containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, &o, w)
		})
	}
}

// TestRequestVersion checks that the version a client names in the path
// reaches the handler, and that a path without one is served as the newest.
func TestRequestVersion(t *testing.T) {
	for _, tc := range []struct{ path, want string }{
		{"/v1.43/containers/json", "1.43"},
		{"/v1.44/containers/json", "1.44"},
		{"/containers/json", APIVersion},
	} {
		t.Run(tc.path, func(t *testing.T) {
			got := ""
			s := &Server{mux: http.NewServeMux()}
			s.mux.HandleFunc("GET /containers/json", func(_ http.ResponseWriter, r *http.Request) { got = requestVersion(r) })
			s.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, tc.path, nil))
			if got != tc.want {
				t.Fatalf("version %q, want %q", got, tc.want)
			}
		})
	}
}

// TestInspectCompat: dockerd's Aliases before 1.45 — the short ID and
// the hostname appended on user-defined networks only, each name once —
// and the client's own aliases from 1.45.
func TestInspectCompat(t *testing.T) {
	const id = "0123456789ab0123456789ab0123456789ab0123456789ab0123456789abcdef"
	for _, tc := range []struct {
		name, version, network, hostname string
		aliases, want                    []string
	}{
		{name: "1.44 default hostname", version: "1.44", network: "appnet", hostname: id[:12], aliases: []string{"web"}, want: []string{"web", id[:12]}},
		{name: "1.44 own hostname", version: "1.44", network: "appnet", hostname: "h1", aliases: []string{"web"}, want: []string{"web", id[:12], "h1"}},
		{name: "1.44 no aliases", version: "1.44", network: "appnet", hostname: id[:12], want: []string{id[:12]}},
		{name: "1.44 duplicates dropped", version: "1.44", network: "appnet", hostname: "web", aliases: []string{"web", "web"}, want: []string{"web", id[:12]}},
		{name: "1.24 too", version: "1.24", network: "appnet", hostname: id[:12], aliases: []string{"a"}, want: []string{"a", id[:12]}},
		{name: "1.44 default bridge untouched", version: "1.44", network: "bridge", hostname: id[:12]},
		{name: "1.45 as asked", version: "1.45", network: "appnet", hostname: "h1", aliases: []string{"web"}, want: []string{"web"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := container.InspectResponse{
				ID:              id,
				Config:          &container.Config{Hostname: tc.hostname},
				NetworkSettings: &container.NetworkSettings{Networks: map[string]*nettypes.EndpointSettings{tc.network: {Aliases: tc.aliases}}},
			}
			inspectCompat(tc.version, &resp)
			if got := resp.NetworkSettings.Networks[tc.network].Aliases; strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("Aliases %q, want %q", got, tc.want)
			}
		})
	}
}
