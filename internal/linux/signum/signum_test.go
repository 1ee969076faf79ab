package signum

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want unix.Signal
		ok   bool
	}{
		{"9", unix.SIGKILL, true},
		{"KILL", unix.SIGKILL, true},
		{"SIGKILL", unix.SIGKILL, true},
		{"sigterm", unix.SIGTERM, true},
		{"term", unix.SIGTERM, true},
		{"SIGRTMIN", 34, true},
		{"SIGRTMIN+3", 37, true},
		{"RTMIN+30", 64, true},
		{"SIGRTMAX", 64, true},
		{"SIGRTMAX-2", 62, true},
		{"64", 64, true},
		{"0", 0, false},
		{"65", 0, false},
		{"-1", 0, false},
		{"SIGRTMIN+31", 0, false},
		{"SIGRTMAX+1", 0, false},
		{"SIGRTMIN3", 0, false},
		{"FOO", 0, false},
		{"", 0, false},
	}
	for _, tc := range tests {
		got, ok := Parse(tc.in)
		if ok != tc.ok || (ok && got != tc.want) {
			t.Errorf("Parse(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}
