package enginetypes

import (
	"bytes"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
)

func TestParseDetachKeys(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []byte // nil with wantErr false: no override
		wantErr  bool
	}{
		{name: "empty means default", in: ""},
		{name: "docker default", in: "ctrl-p,ctrl-q", want: []byte{0x10, 0x11}},
		{name: "ctrl-a and ctrl-z", in: "ctrl-a,ctrl-z", want: []byte{1, 26}},
		{name: "ctrl-@ is NUL", in: "ctrl-@", want: []byte{0}},
		{name: "ctrl-[ to ctrl-_", in: "ctrl-[,ctrl-\\,ctrl-],ctrl-^,ctrl-_", want: []byte{27, 28, 29, 30, 31}},
		{name: "plain characters", in: "a,b", want: []byte{'a', 'b'}},
		{name: "empty key", in: "a,,b", wantErr: true},
		{name: "plain and ctrl mixed", in: "x,ctrl-c,y", want: []byte{'x', 3, 'y'}},
		{name: "upper-case ctrl letter", in: "ctrl-P", wantErr: true},
		{name: "word", in: "ctrl-pq", wantErr: true},
		{name: "two characters", in: "ab", wantErr: true},
		{name: "trailing comma", in: "ctrl-p,", wantErr: true},
		{name: "ctrl with nothing", in: "ctrl-", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseDetachKeys(tc.in)
			if tc.wantErr {
				if !errdefs.IsInvalidArgument(err) {
					t.Fatalf("ParseDetachKeys(%q) = %v, %v; want an invalid-argument error", tc.in, got, err)
				}
				return
			}
			if err != nil || !bytes.Equal(got, tc.want) || (tc.want == nil) != (got == nil) {
				t.Fatalf("ParseDetachKeys(%q) = %#v, %v; want %#v", tc.in, got, err, tc.want)
			}
		})
	}
}
