package registry

import (
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/testutil"
	"github.com/google/go-containerregistry/pkg/authn"
)

// TestRequestCredentials: credentials that come with an operation
// (dockerd's X-Registry-Auth) verify and push and pull without config.json
// knowing them, never store anything, and never serve a later anonymous
// operation of the same Client — for both kinds of registry auth.
func TestRequestCredentials(t *testing.T) {
	for _, kind := range []string{"basic", "token"} {
		t.Run(kind, func(t *testing.T) {
			reg := testutil.StartRegistry(t, testutil.RegistryOptions{Auth: kind})
			ctx := context.Background()
			dir := filepath.Join(t.TempDir(), "docker")
			t.Setenv("DOCKER_CONFIG", dir)
			c := New(Options{})
			good := authn.AuthConfig{Username: reg.User, Password: reg.Password}
			bad := authn.AuthConfig{Username: reg.User, Password: "wrong"}

			if _, err := c.VerifyLogin(ctx, reg.Host, good); err != nil {
				t.Fatalf("verify good credentials: %v", err)
			}
			_, err := c.VerifyLogin(ctx, reg.Host, bad)
			if !errors.Is(err, errdefs.ErrPermission) {
				t.Fatalf("verify wrong password: %v, want ErrPermission", err)
			}
			if kind == "basic" {
				want := "login attempt to http://" + reg.Host + "/v2/ failed with status: 401 Unauthorized"
				if err.Error() != want {
					t.Errorf("wrong password: %q, want dockerd's %q", err, want)
				}
			}
			if _, err := c.VerifyLogin(ctx, reg.Host, authn.AuthConfig{Username: reg.User}); !errdefs.IsInvalidArgument(err) {
				t.Errorf("verify without a password: %v, want ErrInvalidArgument", err)
			}

			ref := reg.Host + "/private/app:1"
			store := newBlobStore()
			img := buildImage(t, store, "amd64", [][]byte{randomLayer(t, 1<<10)})
			if _, err := c.Push(ctx, ref, store, img.PushImage, nil); !errors.Is(err, errdefs.ErrPermission) {
				t.Fatalf("anonymous push: %v, want ErrPermission", err)
			}
			creds, err := CredentialsFor(ref, good)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.WithCredentials(creds).Push(ctx, ref, store, img.PushImage, nil); err != nil {
				t.Fatalf("push with request credentials: %v", err)
			}
			// Keyed as the docker CLI keys X-Registry-Config, by URL.
			if _, err := c.WithCredentials(Credentials{"http://" + reg.Host: good}).Resolve(ctx, ref, nil); err != nil {
				t.Fatalf("pull with request credentials keyed by URL: %v", err)
			}
			badCreds, _ := CredentialsFor(ref, bad)
			if _, err := c.WithCredentials(badCreds).Resolve(ctx, ref, nil); !errors.Is(err, errdefs.ErrPermission) {
				t.Errorf("pull with a wrong password: %v, want ErrPermission", err)
			}
			// The same Client, anonymous again, got nothing from them.
			if _, err := c.Resolve(ctx, ref, nil); !errors.Is(err, errdefs.ErrPermission) {
				t.Errorf("anonymous pull after one with credentials: %v, want ErrPermission", err)
			}
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("verify and request credentials wrote %s: %v", dir, err)
			}
		})
	}
}

// TestCredentialsEmpty: entries without a secret (the docker CLI sends
// {"serveraddress": …} when it has nothing) do not count.
func TestCredentialsEmpty(t *testing.T) {
	for _, tc := range []struct {
		name  string
		creds Credentials
		empty bool
	}{
		{"nil", nil, true},
		{"server address only", Credentials{"127.0.0.1:5000": {}}, true},
		{"user without password", Credentials{"127.0.0.1:5000": {Username: "u"}}, true},
		{"password", Credentials{"127.0.0.1:5000": {Username: "u", Password: "p"}}, false},
		{"auth", Credentials{"x": {Auth: "dTpw"}}, false},
		{"identity token", Credentials{"x": {IdentityToken: "t"}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.creds.Empty(); got != tc.empty {
				t.Errorf("Empty() = %v, want %v", got, tc.empty)
			}
			if c := New(Options{}); (c.WithCredentials(tc.creds) == c) != tc.empty {
				t.Errorf("WithCredentials made a new client: %v, want %v", c.WithCredentials(tc.creds) != c, !tc.empty)
			}
		})
	}
}

// TestAllCredentials reads config.json the way the docker CLI fills
// X-Registry-Config: every auths entry, decoded, keyed as docker keys it.
func TestAllCredentials(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("DOCKER_CONFIG", dir)
	enc := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	cfg := `{"auths":{"https://index.docker.io/v1/":{"auth":"` + enc("hub:secret") + `"},` +
		`"http://127.0.0.1:5000":{"auth":"` + enc("u:p:with:colons") + `"},"empty.test":{}}}`
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	c := New(Options{})
	all, err := c.AllCredentials(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := Credentials{
		dockerHubAuthKey: {Username: "hub", Password: "secret"},
		"127.0.0.1:5000": {Username: "u", Password: "p:with:colons"},
	}
	if len(all) != len(want) {
		t.Fatalf("AllCredentials = %v, want %v", all, want)
	}
	for k, w := range want {
		if g := all[k]; g.Username != w.Username || g.Password != w.Password {
			t.Errorf("AllCredentials[%q] = %+v, want %+v", k, g, w)
		}
	}
	for _, server := range []string{"docker.io", "127.0.0.1:5000"} {
		ac, err := c.AuthConfig(context.Background(), server)
		if err != nil || ac.Password == "" {
			t.Errorf("AuthConfig(%s) = %+v, %v", server, ac, err)
		}
	}
	if ac, err := c.AuthConfig(context.Background(), "nothing.test"); err != nil || ac != (authn.AuthConfig{}) {
		t.Errorf("AuthConfig of an unknown registry = %+v, %v; want zero", ac, err)
	}
}
