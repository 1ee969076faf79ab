package client

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/moby/moby/api/types/registry"
)

// TestAuthHeaders: the headers carry what config.json holds, encoded as
// the docker CLI encodes them (base64url JSON), X-Registry-Auth for the
// image's registry only and X-Registry-Config for all.
func TestAuthHeaders(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("DOCKER_CONFIG", dir)
	enc := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	cfg := `{"auths":{"127.0.0.1:5000":{"auth":"` + enc("u:p?>") + `"},"https://index.docker.io/v1/":{"auth":"` + enc("hub:h") + `"}}}`
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	decode := func(t *testing.T, v string, out any) {
		t.Helper()
		b, err := base64.URLEncoding.DecodeString(v)
		if err != nil {
			t.Fatalf("header %q is not base64url: %v", v, err)
		}
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("header %s: %v", b, err)
		}
	}
	for _, tc := range []struct {
		ref  string
		want registry.AuthConfig
	}{
		{"127.0.0.1:5000/app:1", registry.AuthConfig{Username: "u", Password: "p?>", ServerAddress: "127.0.0.1:5000"}},
		{"busybox", registry.AuthConfig{Username: "hub", Password: "h", ServerAddress: "https://index.docker.io/v1/"}},
		{"other.test/app", registry.AuthConfig{ServerAddress: "other.test"}},
	} {
		t.Run(tc.ref, func(t *testing.T) {
			h, err := authHeader(ctx, tc.ref)
			if err != nil {
				t.Fatal(err)
			}
			var got registry.AuthConfig
			decode(t, h.Get(registry.AuthHeader), &got)
			if got != tc.want {
				t.Errorf("X-Registry-Auth = %+v, want %+v", got, tc.want)
			}
		})
	}
	h, err := configHeader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var all map[string]registry.AuthConfig
	decode(t, h.Get("X-Registry-Config"), &all)
	if len(all) != 2 || all["127.0.0.1:5000"].Password != "p?>" || all["https://index.docker.io/v1/"].Username != "hub" {
		t.Errorf("X-Registry-Config = %+v", all)
	}
}
