package specwire

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// nonLinux clears the sections DecodeJSON skips.
func nonLinux(s *specs.Spec) *specs.Spec {
	if s == nil {
		return nil
	}
	c := *s
	c.Solaris, c.Windows, c.VM, c.ZOS, c.FreeBSD = nil, nil, nil, nil, nil
	return &c
}

// checkLikeEncodingJSON decodes data with DecodeJSON and json.Unmarshal
// and fails unless both accept it with the same result or both refuse it.
func checkLikeEncodingJSON(t *testing.T, data []byte) {
	t.Helper()
	got, err := DecodeJSON(data)
	want := &specs.Spec{}
	werr := json.Unmarshal(data, want)
	if werr == nil && !strings.HasPrefix(strings.TrimSpace(string(data)), "{") {
		werr = errors.New("not an object")
	}
	switch {
	case werr != nil && err == nil:
		t.Fatalf("DecodeJSON accepts what encoding/json refuses (%v):\n%s", werr, data)
	case werr == nil && err != nil:
		t.Fatalf("DecodeJSON: %v, encoding/json accepts:\n%s", err, data)
	case err != nil:
		if !errors.Is(err, ErrJSON) {
			t.Fatalf("error %v does not wrap ErrJSON", err)
		}
		if got != nil {
			t.Fatalf("spec returned with error %v", err)
		}
		return
	}
	if want = nonLinux(want); !reflect.DeepEqual(got, want) {
		t.Fatalf("DecodeJSON differs from encoding/json:\n%s", strings.Join(diff("Spec", reflect.ValueOf(got), reflect.ValueOf(want)), "\n"))
	}
}

func TestDecodeJSONMatchesEncodingJSON(t *testing.T) {
	full := &specs.Spec{}
	n := 0
	fill(t, reflect.ValueOf(full).Elem(), "", &n)
	tests := []struct {
		name string
		spec *specs.Spec
	}{
		{"zero", &specs.Spec{}},
		{"runc default", runcDefaultSpec()},
		{"docker", dockerSpec()},
		{"every field", full},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := json.Marshal(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			checkLikeEncodingJSON(t, data)
			indented, err := json.MarshalIndent(tt.spec, "", "\t")
			if err != nil {
				t.Fatal(err)
			}
			checkLikeEncodingJSON(t, indented)
		})
	}
}

// TestDecodeJSONEveryFieldDecoded guards against a runtime-spec upgrade:
// a field DecodeJSON does not know would be silently skipped.
func TestDecodeJSONEveryFieldDecoded(t *testing.T) {
	full := &specs.Spec{}
	n := 0
	fill(t, reflect.ValueOf(full).Elem(), "", &n)
	data, err := json.Marshal(full)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeJSON(data)
	if err != nil {
		t.Fatal(err)
	}
	if d := diff("Spec", reflect.ValueOf(got), reflect.ValueOf(nonLinux(full))); len(d) > 0 {
		t.Fatalf("fields lost:\n%s", strings.Join(d, "\n"))
	}
}

func TestDecodeJSONEdgeCases(t *testing.T) {
	tests := []struct{ name, json string }{
		{"empty object", `{}`},
		{"nulls everywhere", `{"ociVersion":null,"process":{"args":null,"user":null,"oomScoreAdj":null,"terminal":null},"root":null,"linux":{"resources":{"memory":{"limit":null}},"sysctl":null}}`},
		{"empty collections", `{"process":{"args":[],"env":[]},"annotations":{},"linux":{"sysctl":{},"namespaces":[]}}`},
		{"keys in any case", `{"OCIVERSION":"1.0","Process":{"Args":["a"],"NoNewPrivileges":true},"LINUX":{"CgroupsPath":"/x"}}`},
		{"unknown keys skipped", `{"x":{"y":[1,2.5e3,true,false,null,"s",{"z":[]}]},"process":{"unknown":1,"args":["a"]}}`},
		{"escapes", `{"hostname":"a\"b\\c\/d\u00e9\ud83d\ude00\n\t","process":{"env":["A=\u0000"]}}`},
		{"invalid UTF-8", "{\"hostname\":\"a\xffb\"}"},
		{"non-ASCII", `{"hostname":"日本","annotations":{"ключ":"значение"}}`},
		{"duplicate keys", `{"hostname":"a","hostname":"b","process":{"args":["x"],"args":["y","z"]}}`},
		{"extreme numbers", `{"process":{"user":{"uid":4294967295},"rlimits":[{"hard":18446744073709551615,"soft":0}],"oomScoreAdj":-1000},"linux":{"devices":[{"major":-9223372036854775808,"minor":9223372036854775807}]}}`},
		{"white space", " \n\t{ \"hostname\" : \"h\" , \"mounts\" : [ { \"destination\" : \"/x\" } ] }\r\n"},
		{"non-linux sections", `{"windows":{"layerFolders":["c"]},"solaris":{},"vm":{"hypervisor":{"path":"x"}},"hostname":"h"}`},

		{"number too big for uint32", `{"process":{"user":{"uid":4294967296}}}`},
		{"negative unsigned", `{"process":{"user":{"uid":-1}}}`},
		{"fraction into int", `{"process":{"oomScoreAdj":1.5}}`},
		{"exponent into int", `{"process":{"oomScoreAdj":1e3}}`},
		{"string into bool", `{"process":{"terminal":"yes"}}`},
		{"number into string", `{"hostname":5}`},
		{"object into array", `{"process":{"args":{}}}`},
		{"trailing data", `{} {}`},
		{"trailing comma", `{"hostname":"h",}`},
		{"missing colon", `{"hostname" "h"}`},
		{"unterminated", `{"hostname":"h"`},
		{"unterminated string", `{"hostname":"h`},
		{"bad literal", `{"x":tru}`},
		{"bad number", `{"x":01}`},
		{"bad number 2", `{"x":-}`},
		{"bad escape", `{"hostname":"\x"}`},
		{"control character", "{\"hostname\":\"a\x01\"}"},
		{"invalid JSON in skipped value", `{"x":[1,]}`},
		{"top-level null", `null`},
		{"top-level array", `[]`},
		{"empty", ``},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkLikeEncodingJSON(t, []byte(tt.json)) })
	}
}

func TestDecodeJSONDepthLimit(t *testing.T) {
	deep := `{"x":` + strings.Repeat("[", maxDepth+10) + strings.Repeat("]", maxDepth+10) + `}`
	if _, err := DecodeJSON([]byte(deep)); !errors.Is(err, ErrJSON) {
		t.Fatalf("nesting beyond %d accepted: %v", maxDepth, err)
	}
}

// FuzzDecodeJSON: DecodeJSON never panics and agrees with encoding/json.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []*specs.Spec{{}, runcDefaultSpec(), dockerSpec()} {
		b, _ := json.Marshal(s)
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Add([]byte(`{"process":{"args":["a\u00e9"],"user":{"uid":1}},"x":[1,{"y":null}]}`))
	f.Fuzz(func(t *testing.T, b []byte) { checkLikeEncodingJSON(t, b) })
}
