//go:build unix

package client

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/registry"
)

// authDaemon answers POST /auth on a unix socket as berthd does for a
// registry whose token service hands out identityToken ("" for none),
// and returns a client of it.
func authDaemon(t *testing.T, identityToken string) *Client {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "api.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/auth") {
			http.NotFound(w, r)
			return
		}
		var ac registry.AuthConfig
		if err := json.NewDecoder(r.Body).Decode(&ac); err != nil || ac.Username != "u" || ac.Password != "pw" {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"message":"login attempt failed"}`))
			return
		}
		_ = json.NewEncoder(w).Encode(registry.AuthResponse{Status: "Login Succeeded", IdentityToken: identityToken})
	}))
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	c, err := New("unix://" + sock)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// sentAuth is the X-Registry-Auth a pull from host would carry.
func sentAuth(t *testing.T, host string) registry.AuthConfig {
	t.Helper()
	h, err := authHeader(context.Background(), host+"/app:1")
	if err != nil {
		t.Fatal(err)
	}
	b, err := base64.URLEncoding.DecodeString(h.Get(registry.AuthHeader))
	if err != nil {
		t.Fatal(err)
	}
	var ac registry.AuthConfig
	if err := json.Unmarshal(b, &ac); err != nil {
		t.Fatal(err)
	}
	return ac
}

// TestLoginStoresWhatAuthAccepted: `berth --host login` keeps what the
// daemon's /auth accepted the way the docker CLI does — the identity
// token in place of the password when /auth returns one — in
// config.json, keeping its other keys and dropping other spellings of
// the same host, and later requests send it in X-Registry-Auth.
func TestLoginStoresWhatAuthAccepted(t *testing.T) {
	const host = "127.0.0.1:5000"
	enc := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	for _, tc := range []struct {
		name, token string
		entry       map[string]string
		sent        registry.AuthConfig
	}{
		{name: "identity token", token: "refresh-abc",
			entry: map[string]string{"auth": enc("u:"), "identitytoken": "refresh-abc"},
			sent:  registry.AuthConfig{Username: "u", IdentityToken: "refresh-abc", ServerAddress: host}},
		{name: "password", entry: map[string]string{"auth": enc("u:pw")},
			sent: registry.AuthConfig{Username: "u", Password: "pw", ServerAddress: host}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			t.Setenv("DOCKER_CONFIG", dir)
			cfg := `{"psFormat":"table {{.ID}}","auths":{"http://` + host + `/v1/":{"auth":"` + enc("old:old") + `"},"other.test":{"auth":"` + enc("o:o") + `"}}}`
			if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := authDaemon(t, tc.token).Login(context.Background(), host, "u", "pw"); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(filepath.Join(dir, "config.json"))
			if err != nil {
				t.Fatal(err)
			}
			var got struct {
				PsFormat string `json:"psFormat"`
				Auths    map[string]map[string]string
			}
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatalf("config.json: %v\n%s", err, b)
			}
			if got.PsFormat != "table {{.ID}}" || len(got.Auths) != 2 || got.Auths["other.test"]["auth"] != enc("o:o") {
				t.Errorf("other keys not kept:\n%s", b)
			}
			if e := got.Auths[host]; len(e) != len(tc.entry) || e["auth"] != tc.entry["auth"] || e["identitytoken"] != tc.entry["identitytoken"] {
				t.Errorf("auths[%s] = %v, want %v", host, e, tc.entry)
			}
			if tc.token != "" && strings.Contains(string(b), enc("u:pw")) {
				t.Errorf("the password is stored beside the identity token:\n%s", b)
			}
			if ac := sentAuth(t, host); ac != tc.sent {
				t.Errorf("X-Registry-Auth = %+v, want %+v", ac, tc.sent)
			}
		})
	}
}

// TestLoginIdentityTokenHelper: with a credential helper configured the
// identity token goes to the helper as docker sends it (username
// "<token>"), and comes back out as the identity token.
func TestLoginIdentityTokenHelper(t *testing.T) {
	const host = "127.0.0.1:5001"
	dir, bin := t.TempDir(), t.TempDir()
	t.Setenv("DOCKER_CONFIG", dir)
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	store := filepath.Join(bin, "stored.json")
	script := "#!/bin/sh\ncase \"$1\" in\nstore) cat > " + store + " ;;\nget) cat " + store + " ;;\nerase) rm -f " + store + " ;;\nesac\n"
	if err := os.WriteFile(filepath.Join(bin, "docker-credential-berthtest"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"credsStore":"berthtest"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := authDaemon(t, "refresh-xyz").Login(context.Background(), host, "u", "pw"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(store)
	if err != nil {
		t.Fatal(err)
	}
	var creds struct{ ServerURL, Username, Secret string }
	if err := json.Unmarshal(b, &creds); err != nil {
		t.Fatalf("helper got %s: %v", b, err)
	}
	if creds.ServerURL != host || creds.Username != "<token>" || creds.Secret != "refresh-xyz" {
		t.Errorf("helper stored %+v", creds)
	}
	cfg, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	if strings.Contains(string(cfg), "refresh-xyz") {
		t.Errorf("config.json holds the token beside the helper:\n%s", cfg)
	}
	if ac := sentAuth(t, host); ac.IdentityToken != "refresh-xyz" || ac.Password != "" {
		t.Errorf("X-Registry-Auth = %+v, want the identity token", ac)
	}
}
