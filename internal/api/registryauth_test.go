package api

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/registry"
)

// TestRequestAuth decodes X-Registry-Auth as dockerd does (base64url of
// the JSON AuthConfig), with or without padding, and treats a missing or
// undecodable header as no credentials; they apply to the image's
// registry whatever serveraddress says.
func TestRequestAuth(t *testing.T) {
	// "?>" in the password makes the standard and URL alphabets differ.
	const js = `{"username":"u","password":"p?>~~","serveraddress":"elsewhere.test"}`
	url := base64.URLEncoding.EncodeToString([]byte(js))
	std := base64.StdEncoding.EncodeToString([]byte(js))
	if url == std || !strings.HasSuffix(url, "=") {
		t.Fatalf("fixture does not exercise the alphabet and padding: %s", url)
	}
	for _, tc := range []struct {
		name, header string
		want         registry.Credentials
	}{
		{"none", "", nil},
		{"padded", url, registry.Credentials{"127.0.0.1:5000": {Username: "u", Password: "p?>~~"}}},
		{"unpadded", strings.TrimRight(url, "="), registry.Credentials{"127.0.0.1:5000": {Username: "u", Password: "p?>~~"}}},
		{"standard alphabet", std, nil},
		{"empty object", base64.URLEncoding.EncodeToString([]byte("{}")), registry.Credentials{"127.0.0.1:5000": {}}},
		{"not JSON", base64.URLEncoding.EncodeToString([]byte("user:pass")), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/images/create", nil)
			if tc.header != "" {
				r.Header.Set("X-Registry-Auth", tc.header)
			}
			got := requestAuth(r, "127.0.0.1:5000/app:1")
			if len(got) != len(tc.want) {
				t.Fatalf("requestAuth = %v, want %v", got, tc.want)
			}
			for k, w := range tc.want {
				if got[k] != w {
					t.Errorf("requestAuth[%q] = %+v, want %+v", k, got[k], w)
				}
			}
		})
	}
}

// TestBuildAuth decodes X-Registry-Config: a map of registry to
// AuthConfig, each kept under its key.
func TestBuildAuth(t *testing.T) {
	js := `{"https://index.docker.io/v1/":{"username":"hub","password":"h"},"127.0.0.1:5000":{"username":"u","password":"p","serveraddress":"127.0.0.1:5000"}}`
	for _, tc := range []struct {
		name, header string
		want         registry.Credentials
	}{
		{"none", "", nil},
		{"two registries", base64.RawURLEncoding.EncodeToString([]byte(js)), registry.Credentials{
			"https://index.docker.io/v1/": {Username: "hub", Password: "h"},
			"127.0.0.1:5000":              {Username: "u", Password: "p"},
		}},
		{"garbage", "%%%", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/build", nil)
			if tc.header != "" {
				r.Header.Set("X-Registry-Config", tc.header)
			}
			got := buildAuth(r)
			if len(got) != len(tc.want) {
				t.Fatalf("buildAuth = %v, want %v", got, tc.want)
			}
			for k, w := range tc.want {
				if got[k] != w {
					t.Errorf("buildAuth[%q] = %+v, want %+v", k, got[k], w)
				}
			}
		})
	}
}
