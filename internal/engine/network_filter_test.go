package engine

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	nettypes "github.com/moby/moby/api/types/network"
)

func TestFilterNetworks(t *testing.T) {
	mk := func(name, id, driver string, labels map[string]string, attached bool) nettypes.Inspect {
		n := nettypes.Inspect{Network: nettypes.Network{Name: name, ID: id, Driver: driver, Scope: "local", Labels: labels}}
		n.Containers = map[string]nettypes.EndpointResource{}
		if attached {
			n.Containers["c"] = nettypes.EndpointResource{}
		}
		return n
	}
	nets := []nettypes.Inspect{
		mk("bridge", "b1", "bridge", nil, false),
		mk("host", "h1", "host", nil, false),
		mk("none", "n1", "null", nil, false),
		mk("app", "a1f", "bridge", map[string]string{"env": "prod"}, true),
		mk("app-test", "a2f", "bridge", map[string]string{"env": "test"}, false),
	}
	tests := []struct {
		name    string
		f       NetworkFilters
		want    []string
		wantErr error
	}{
		{"none", nil, []string{"bridge", "host", "none", "app", "app-test"}, nil},
		{"name is a pattern", NetworkFilters{"name": {"^app"}}, []string{"app", "app-test"}, nil},
		{"name exact or pattern", NetworkFilters{"name": {"app$"}}, []string{"app"}, nil},
		{"id prefix", NetworkFilters{"id": {"a2"}}, []string{"app-test"}, nil},
		{"driver", NetworkFilters{"driver": {"null"}}, []string{"none"}, nil},
		{"label key", NetworkFilters{"label": {"env"}}, []string{"app", "app-test"}, nil},
		{"label value", NetworkFilters{"label": {"env=test"}}, []string{"app-test"}, nil},
		{"custom", NetworkFilters{"type": {"custom"}}, []string{"app", "app-test"}, nil},
		{"builtin", NetworkFilters{"type": {"builtin"}}, []string{"bridge", "host", "none"}, nil},
		{"dangling", NetworkFilters{"dangling": {"true"}}, []string{"app-test"}, nil},
		{"not dangling", NetworkFilters{"dangling": {"false"}}, []string{"bridge", "host", "none", "app"}, nil},
		{"unknown key", NetworkFilters{"nosuch": {"x"}}, nil, errdefs.ErrInvalidArgument},
		{"bad type", NetworkFilters{"type": {"x"}}, nil, errdefs.ErrInvalidArgument},
		{"bad dangling", NetworkFilters{"dangling": {"x"}}, nil, errdefs.ErrInvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := filterNetworks(nets, tc.f)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("error %v, want %v", err, tc.wantErr)
			}
			var got []string
			for _, n := range out {
				got = append(got, n.Name)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestPruneFilter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	old, recent := now.Add(-48*time.Hour), now.Add(-time.Minute)
	tests := []struct {
		name    string
		f       NetworkFilters
		created time.Time
		labels  map[string]string
		keep    bool
		wantErr error
		extra   []string
	}{
		{"no filter", nil, recent, nil, false, nil, nil},
		{"until spares the recent", NetworkFilters{"until": {"24h"}}, recent, nil, true, nil, nil},
		{"until takes the old", NetworkFilters{"until": {"24h"}}, old, nil, false, nil, nil},
		{"until as unix seconds", NetworkFilters{"until": {"1735689600.5"}}, old, nil, true, nil, nil},
		{"until as a date", NetworkFilters{"until": {"2025-12-31"}}, old, nil, true, nil, nil},
		{"label must hold", NetworkFilters{"label": {"a=1"}}, old, map[string]string{"a": "2"}, true, nil, nil},
		{"label holds", NetworkFilters{"label": {"a=1"}}, old, map[string]string{"a": "1"}, false, nil, nil},
		{"label! spares", NetworkFilters{"label!": {"keep"}}, old, map[string]string{"keep": ""}, true, nil, nil},
		{"label! takes others", NetworkFilters{"label!": {"keep"}}, old, nil, false, nil, nil},
		{"two label! spare what has both", NetworkFilters{"label!": {"a", "b"}}, old, map[string]string{"a": "", "b": ""}, true, nil, nil},
		{"two label! take what has one", NetworkFilters{"label!": {"a", "b"}}, old, map[string]string{"a": ""}, false, nil, nil},
		{"two untils", NetworkFilters{"until": {"1h", "2h"}}, old, nil, false, errdefs.ErrInvalidArgument, nil},
		{"bad until", NetworkFilters{"until": {"soon"}}, old, nil, false, errdefs.ErrInvalidArgument, nil},
		{"unknown key", NetworkFilters{"name": {"x"}}, old, nil, false, errdefs.ErrInvalidArgument, nil},
		{"dangling is not a network filter", NetworkFilters{"dangling": {"true"}}, old, nil, false, errdefs.ErrInvalidArgument, nil},
		{"dangling left to the image prune", NetworkFilters{"dangling": {"true"}, "label": {"a"}}, old, map[string]string{"a": ""}, false, nil, []string{"dangling"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := parsePruneFilter(tc.f, now, tc.extra...)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("error %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if got := p.keeps(tc.created, tc.labels); got != tc.keep {
				t.Errorf("keeps = %v, want %v", got, tc.keep)
			}
		})
	}
}

func TestParseNetworkFilters(t *testing.T) {
	f, err := ParseNetworkFilters([]string{"name=a", "name=b", "label=k=v"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(f["name"], []string{"a", "b"}) || !slices.Equal(f["label"], []string{"k=v"}) {
		t.Errorf("parsed %v", f)
	}
	if _, err := ParseNetworkFilters([]string{"novalue"}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("filter without =: %v", err)
	}
}
