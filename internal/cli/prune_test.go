package cli

import (
	"bytes"
	"maps"
	"strings"
	"testing"
)

func TestConfirm(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"y\n", true},
		{"YES\n", true},
		{" yes \n", true},
		{"n\n", false},
		{"\n", false},
		{"", false},
		{"yess\n", false},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			var out bytes.Buffer
			stdin := strings.NewReader(tc.in + "rest")
			a := &app{stdin: stdin, stdout: &out}
			if got := confirm(a, "WARNING! Gone."); got != tc.want {
				t.Errorf("confirm(%q) = %v, want %v", tc.in, got, tc.want)
			}
			if out.String() != "WARNING! Gone.\nAre you sure you want to continue? [y/N] " {
				t.Errorf("asked %q", out.String())
			}
			// Only the answer's line is read.
			if rest := stdin.Len(); strings.HasSuffix(tc.in, "\n") && rest != len("rest") {
				t.Errorf("%d bytes left unread, want 4", rest)
			}
		})
	}
}

func TestImagePruneFilters(t *testing.T) {
	tests := []struct {
		name string
		in   map[string][]string
		all  bool
		want map[string][]string
	}{
		{"dangling only", nil, false, map[string][]string{"dangling": {"true"}}},
		{"-a", nil, true, map[string][]string{"dangling": {"false"}}},
		{"filters kept", map[string][]string{"until": {"24h"}, "label": {"a=b"}}, true,
			map[string][]string{"dangling": {"false"}, "until": {"24h"}, "label": {"a=b"}}},
		{"dangling by hand wins", map[string][]string{"dangling": {"false"}}, false, map[string][]string{"dangling": {"false"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := imagePruneFilters(tc.in, tc.all); !maps.EqualFunc(got, tc.want, func(a, b []string) bool { return strings.Join(a, ",") == strings.Join(b, ",") }) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestSystemPruneWarning(t *testing.T) {
	tests := []struct {
		name                     string
		all, volumes, buildCache bool
		filters                  []string
		want                     string
	}{
		{"default", false, false, true, nil, "WARNING! This will remove:\n" +
			"  - all stopped containers\n  - all networks not used by at least one container\n" +
			"  - all dangling images\n  - all build cache\n"},
		{"all, volumes, filtered", true, true, false, []string{"until=24h", "label=a"}, "WARNING! This will remove:\n" +
			"  - all stopped containers\n  - all networks not used by at least one container\n" +
			"  - all anonymous volumes not used by at least one container\n" +
			"  - all images without at least one container associated to them\n\n" +
			"  Items to be pruned will be filtered with:\n  - label=a\n  - until=24h\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := systemPruneWarning(tc.all, tc.volumes, tc.buildCache, tc.filters); got != tc.want {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}
