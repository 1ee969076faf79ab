package specwire

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// marshalNoHTML is json.Marshal without the HTML escaping, the encoding
// AppendJSONString promises to match byte for byte.
func marshalNoHTML(t *testing.T, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	tests := []struct{ name, s string }{
		{"empty", ""},
		{"plain", "/run/berth/bundles/abc"},
		{"quotes and backslashes", `q"b\s/`},
		{"named control characters", "\n\r\t"},
		{"other control characters", "\x00\x01\x1f\x7f"},
		{"html", "<a href=\"x\">&amp;</a>"},
		{"multibyte", "日本 ünïcödé ✓ 😀"},
		{"line separators", "a\u2028b\u2029c"},
		{"invalid utf-8", "bad \xff utf-8 \xe2\x82 end \xc0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AppendJSONString([]byte("prefix"), tt.s)
			want := append([]byte("prefix"), marshalNoHTML(t, tt.s)...)
			if !bytes.Equal(got, want) {
				t.Fatalf("AppendJSONString(%q) = %s, want %s", tt.s, got, want)
			}
		})
	}
}

func TestAppendJSONStringMapRoundTrips(t *testing.T) {
	type nsType string
	tests := []struct {
		name string
		m    map[nsType]string
	}{
		{"nil", nil},
		{"empty", map[nsType]string{}},
		{"sorted on output", map[nsType]string{"pid": "/proc/1/ns/pid", "net": "/proc/1/ns/net", "": "", "ipc\"": "x\x01"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AppendJSONStringMap(nil, tt.m)
			want := marshalNoHTML(t, tt.m)
			if tt.m == nil {
				want = []byte("{}") // documented: the caller writes null itself
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("AppendJSONStringMap = %s, want %s", got, want)
			}
			r := NewJSONReader(got)
			back := r.StringMap()
			if err := r.End(); err != nil {
				t.Fatal(err)
			}
			if len(tt.m) == 0 && len(back) == 0 {
				return
			}
			wantBack := map[string]string{}
			for k, v := range tt.m {
				wantBack[string(k)] = v
			}
			if !reflect.DeepEqual(back, wantBack) {
				t.Fatalf("read back %v, want %v", back, wantBack)
			}
		})
	}
}
