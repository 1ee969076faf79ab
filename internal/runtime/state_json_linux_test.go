package runtime

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestStateJSONMatchesEncodingJSON: the hand-written record encodes to
// what json.Marshal would give, value for value.
func TestStateJSONMatchesEncodingJSON(t *testing.T) {
	created := time.Date(2026, 11, 22, 10, 56, 13, 123456789, time.UTC)
	tests := []struct {
		name string
		c    Container
	}{
		{"zero", Container{}},
		{"typical", Container{
			ID: "bench-berth", Bundle: "/tmp/b", Rootfs: "/tmp/b/rootfs", Pid: 4242, Created: created,
			Config:   json.RawMessage("{\n  \"ociVersion\": \"1.0.2-dev\",\n  \"process\": {\"args\": [\"true\"]}\n}"),
			PidStart: 1 << 40, CgroupPath: "/berth/bench-berth",
			NamespacePaths: map[specs.LinuxNamespaceType]string{specs.PIDNamespace: "/proc/4242/ns/pid", specs.NetworkNamespace: "/proc/4242/ns/net"},
		}},
		{"hooks and annotations", Container{
			ID: "x", Owner: "1000", Created: created.In(time.FixedZone("x", 3600)), Config: json.RawMessage(`{}`),
			Annotations:  map[string]string{"b": "2", "a": "1", "": ""},
			HasPoststart: true, HasPoststop: true,
			NamespacePaths: map[specs.LinuxNamespaceType]string{},
		}},
		{"strings that need escaping", Container{
			ID:          "q\"b\\s/\n\r\t\x00\x1f",
			Bundle:      "日本\u2028\u2029<>&",
			Rootfs:      "bad \xff utf-8 \xe2\x82",
			Annotations: map[string]string{"k\"": "v\x01"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.c.appendJSON(nil)
			if !json.Valid(got) {
				t.Fatalf("invalid JSON: %s", got)
			}
			want, err := json.Marshal(&tt.c)
			if err != nil {
				t.Fatal(err)
			}
			var g, w map[string]any
			if err := json.Unmarshal(got, &g); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(want, &w); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(g, w) {
				t.Fatalf("appendJSON differs from json.Marshal:\n got %s\nwant %s", got, want)
			}
			// Load's decoder reads both back as encoding/json does.
			for _, data := range [][]byte{got, want} {
				var fast, slow Container
				if err := fast.decodeJSON(data); err != nil {
					t.Fatalf("decodeJSON: %v", err)
				}
				if err := json.Unmarshal(data, &slow); err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(fast, slow) {
					t.Fatalf("decodeJSON differs from json.Unmarshal:\n got %+v\nwant %+v", fast, slow)
				}
			}
		})
	}
}

func TestStateDecodeRejectsCorruptRecords(t *testing.T) {
	for _, data := range []string{``, `{`, `{"pid":"1"}`, `{"created":"yesterday"}`, `{"id":"x"} trailing`, `[]`} {
		var c Container
		if err := c.decodeJSON([]byte(data)); err == nil {
			t.Errorf("decodeJSON(%q) accepted a corrupt record", data)
		}
	}
}

func TestRemoveStateDir(t *testing.T) {
	tests := []struct {
		name  string
		files []string
	}{
		{"empty", nil},
		{"record", []string{stateFile}},
		{"created container", []string{stateFile, startSock}},
		{"debris of an interrupted save", []string{stateFile, stateTmp}},
		{"a file the runtime does not know", []string{stateFile, "other"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "c")
			if err := os.Mkdir(dir, 0o711); err != nil {
				t.Fatal(err)
			}
			for _, f := range tt.files {
				if err := os.WriteFile(filepath.Join(dir, f), nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if err := removeStateDir(dir); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Fatalf("%s still there: %v", dir, err)
			}
			if err := removeStateDir(dir); err != nil {
				t.Fatalf("removing a missing directory: %v", err)
			}
		})
	}
}
