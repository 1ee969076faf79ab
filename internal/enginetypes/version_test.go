package enginetypes

import "testing"

func TestVersionLess(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"1.0.2", "1.1.0", true},
		{"1.1.0", "1.0.2", false},
		{"1.2.0", "1.10.0", true},
		{"1.2.1", "1.2.1", false},
		{"1.1.0-rc.1", "1.1.0", false},
		{"1.3.0+dev", "1.3.1", true},
		{"1.9", "1.44", true},
		{"1.44", "1.44", false},
		{"1.45", "1.44", false},
		{"", "1.24", true},
		{"2", "1.44", false},
	}
	for _, tc := range tests {
		if got := VersionLess(tc.a, tc.b); got != tc.want {
			t.Errorf("VersionLess(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}
