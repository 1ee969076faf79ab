package engine

// `network ls` and `network prune` filters, with dockerd's rules
// (daemon/network/filter.go and daemon/prune.go), in the engine so the
// CLI in process, berthd's API and `berth --host` all filter alike.

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	nettypes "github.com/moby/moby/api/types/network"
)

// NetworkFilters are Docker's filters: a key and the values given for it
// (`--filter name=a --filter name=b` is {"name": ["a", "b"]}).
type NetworkFilters = map[string][]string

// ParseNetworkFilters reads the CLI's "key=value" filter flags.
func ParseNetworkFilters(flags []string) (NetworkFilters, error) {
	f := NetworkFilters{}
	for _, s := range flags {
		k, v, ok := strings.Cut(s, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("bad format of filter (expected name=value): %s: %w", s, errdefs.ErrInvalidArgument)
		}
		f[k] = append(f[k], v)
	}
	return f, nil
}

// predefinedNetwork reports the networks every daemon has (dockerd's
// runconfig.IsPreDefinedNetwork): the type and dangling filters and
// prune treat them apart.
func predefinedNetwork(name string) bool {
	return name == nettypes.NetworkBridge || name == nettypes.NetworkHost || name == nettypes.NetworkNone
}

// filterNetworks applies `network ls` filters: name and id match as
// unanchored regular expressions or exactly, driver and scope exactly,
// label by key or key=value; dangling and type select by use and by
// origin.
func filterNetworks(nets []nettypes.Inspect, f NetworkFilters) ([]nettypes.Inspect, error) {
	for k := range f {
		switch k {
		case "name", "id", "driver", "label", "scope", "type", "dangling":
		default:
			return nil, fmt.Errorf("invalid filter '%s': %w", k, errdefs.ErrInvalidArgument)
		}
	}
	var dangling *bool
	for _, v := range f["dangling"] {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("invalid filter 'dangling=%s': %w", v, errdefs.ErrInvalidArgument)
		}
		dangling = &b
	}
	for _, v := range f["type"] {
		if v != "custom" && v != "builtin" {
			return nil, fmt.Errorf("invalid filter: 'type'='%s': %w", v, errdefs.ErrInvalidArgument)
		}
	}
	out := []nettypes.Inspect{}
	for _, n := range nets {
		switch {
		case len(f["driver"]) > 0 && !exactMatch(f["driver"], n.Driver),
			len(f["scope"]) > 0 && !exactMatch(f["scope"], n.Scope),
			len(f["name"]) > 0 && !patternMatch(f["name"], n.Name),
			len(f["id"]) > 0 && !patternMatch(f["id"], n.ID),
			len(f["label"]) > 0 && !labelsMatch(f["label"], n.Labels):
			continue
		}
		if dangling != nil && *dangling != (!predefinedNetwork(n.Name) && len(n.Containers) == 0) {
			continue
		}
		if t := f["type"]; len(t) > 0 && !exactMatch(t, map[bool]string{true: "builtin", false: "custom"}[predefinedNetwork(n.Name)]) {
			continue
		}
		out = append(out, n)
	}
	return out, nil
}

// pruneFilter is what the prune operations (containers, networks, images)
// filter by, as dockerd's do: creation before until, every label, none of
// the excluded labels.
type pruneFilter struct {
	until            time.Time
	labels, excluded []string
}

// parsePruneFilter reads the until, label and label! filters; any other
// key is an invalid filter unless it is one of extra, which the caller
// reads itself (dangling, for images).
func parsePruneFilter(f map[string][]string, now time.Time, extra ...string) (pruneFilter, error) {
	var p pruneFilter
	for k, vs := range f {
		if slices.Contains(extra, k) {
			continue
		}
		switch k {
		case "label":
			p.labels = vs
		case "label!":
			p.excluded = vs
		case "until":
			if len(vs) != 1 {
				return p, fmt.Errorf("more than one until filter specified: %w", errdefs.ErrInvalidArgument)
			}
			t, err := parseUntil(vs[0], now)
			if err != nil {
				return p, err
			}
			p.until = t
		default:
			return p, fmt.Errorf("invalid filter '%s': %w", k, errdefs.ErrInvalidArgument)
		}
	}
	return p, nil
}

// active reports whether the filter can spare anything.
func (p pruneFilter) active() bool {
	return !p.until.IsZero() || len(p.labels) > 0 || len(p.excluded) > 0
}

// keeps reports whether the filter spares an object created then with
// these labels. Several label! filters spare only an object that matches
// every one of them, as dockerd's do (checked against dockerd 20.10:
// `network prune --filter label!=a --filter label!=b` keeps a network
// labelled a and b, and prunes those with only one of them).
func (p pruneFilter) keeps(created time.Time, labels map[string]string) bool {
	return !p.until.IsZero() && !created.Before(p.until) ||
		len(p.labels) > 0 && !labelsMatch(p.labels, labels) ||
		len(p.excluded) > 0 && labelsMatch(p.excluded, labels)
}

func exactMatch(values []string, s string) bool {
	for _, v := range values {
		if v == s {
			return true
		}
	}
	return false
}

// patternMatch is dockerd's filters.Args.Match: a value matches when it
// equals s or, as a regular expression, matches anywhere in s.
func patternMatch(values []string, s string) bool {
	for _, v := range values {
		if v == s {
			return true
		}
		if re, err := regexp.Compile(v); err == nil && re.MatchString(s) {
			return true
		}
	}
	return false
}

// labelsMatch requires every "key" or "key=value" filter to hold.
func labelsMatch(filters []string, labels map[string]string) bool {
	for _, f := range filters {
		k, v, hasV := strings.Cut(f, "=")
		got, ok := labels[k]
		if !ok || hasV && got != v {
			return false
		}
	}
	return true
}

// parseUntil reads Docker's until values: a Go duration before now, Unix
// seconds (with an optional fraction), or an RFC 3339 date or time.
// dockerd answers a bad one with 500 and these words; it is the caller's
// mistake, so berth classifies it as an invalid argument (400).
func parseUntil(v string, now time.Time) (time.Time, error) {
	bad := fmt.Errorf("failed to parse value as time or duration: %q: %w", v, errdefs.ErrInvalidArgument)
	if d, err := time.ParseDuration(v); err == nil {
		return now.Add(-d), nil
	}
	if sec, frac, _ := strings.Cut(v, "."); sec != "" {
		if s, err := strconv.ParseInt(sec, 10, 64); err == nil {
			ns := int64(0)
			if frac != "" {
				f, err := strconv.ParseFloat("0."+frac, 64)
				if err != nil {
					return time.Time{}, bad
				}
				ns = int64(f * 1e9)
			}
			return time.Unix(s, ns), nil
		}
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, v, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, bad
}
