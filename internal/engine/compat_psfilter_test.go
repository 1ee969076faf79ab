package engine

import "testing"

// TestMatchName: ps's name filter is dockerd's, a regular expression
// searched in the name with or without the leading slash.
func TestMatchName(t *testing.T) {
	tests := []struct {
		name, pattern, ctr string
		want               bool
	}{
		{"substring", "web", "my-web-1", true},
		{"anchored", "^web$", "web", true},
		{"anchored other", "^web$", "web2", false},
		{"slash form", "/web", "web", true},
		{"anchored slash", "^/web$", "web", true},
		{"alternation", "^(db|web)$", "db", true},
		{"no match", "cache", "web", false},
		{"bad pattern", "web[", "web[", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := matchName(tt.pattern, tt.ctr); got != tt.want {
				t.Errorf("matchName(%q, %q) = %v, want %v", tt.pattern, tt.ctr, got, tt.want)
			}
		})
	}
}
