package caps

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	cases := []struct {
		name    string
		in      []string
		want    Set
		wantErr string
	}{
		{"nil", nil, 0, ""},
		{"empty", []string{}, 0, ""},
		{"one", []string{"CAP_CHOWN"}, 1, ""},
		{"several", []string{"CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_CHOWN"}, 1<<0 | 1<<5 | 1<<10, ""},
		{"duplicates", []string{"CAP_KILL", "CAP_KILL"}, 1 << 5, ""},
		{"last known", []string{"CAP_CHECKPOINT_RESTORE"}, 1 << 40, ""},
		{"above 31", []string{"CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_BPF"}, 1<<31 | 1<<32 | 1<<39, ""},
		{"unknown", []string{"CAP_CHOWN", "CAP_FLY"}, 0, `"CAP_FLY"`},
		{"missing prefix", []string{"CHOWN"}, 0, `"CHOWN"`},
		{"lower case", []string{"cap_chown"}, 0, `"cap_chown"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want error naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %#x, %v; want %#x", got, err, tc.want)
			}
		})
	}
}

func TestNames(t *testing.T) {
	if MaxKnown != 40 {
		t.Fatalf("MaxKnown = %d, want 40 (CAP_CHECKPOINT_RESTORE)", MaxKnown)
	}
	for c := 0; c <= MaxKnown; c++ {
		n := Name(c)
		if got, ok := Lookup(n); !ok || got != c {
			t.Errorf("Lookup(Name(%d)=%s) = %d, %v", c, n, got, ok)
		}
	}
	if got := Name(50); got != "CAP_50" {
		t.Errorf("Name(50) = %s", got)
	}
	if got := Set(1<<5 | 1<<21).Names(); strings.Join(got, ",") != "CAP_KILL,CAP_SYS_ADMIN" {
		t.Errorf("Names = %v", got)
	}
}
