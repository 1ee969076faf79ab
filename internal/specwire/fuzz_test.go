package specwire

import (
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// FuzzDecodeSpec: DecodeSpec never panics, and whatever it accepts
// re-encodes to a spec that decodes to the same value.
func FuzzDecodeSpec(f *testing.F) {
	for _, s := range []*specs.Spec{nil, {}, runcDefaultSpec(), dockerSpec()} {
		b := AppendSpec(nil, s)
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	full := &specs.Spec{}
	n := 0
	fill(f, reflect.ValueOf(full).Elem(), "", &n)
	f.Add(AppendSpec(nil, full))

	f.Fuzz(func(t *testing.T, b []byte) {
		s, rest, err := DecodeSpec(b)
		if err != nil {
			if s != nil || rest != nil {
				t.Fatalf("values returned with error %v", err)
			}
			return
		}
		if len(rest) > len(b) {
			t.Fatalf("rest longer than input")
		}
		again, _, err := DecodeSpec(AppendSpec(nil, s))
		if err != nil {
			t.Fatalf("re-encoding of an accepted spec fails: %v", err)
		}
		if !reflect.DeepEqual(s, again) {
			t.Fatalf("re-encoding changes the spec")
		}
	})
}
