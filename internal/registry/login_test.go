package registry

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/testutil"
	"github.com/google/go-containerregistry/pkg/name"
)

func readConfig(t *testing.T, dir string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("config.json: %v\n%s", err, data)
	}
	return m
}

// TestLoginLogout logs in to a registry with Basic auth through
// $DOCKER_CONFIG, checks what config.json holds (and that nothing else in
// it changed), uses the stored credentials, and logs out.
func TestLoginLogout(t *testing.T) {
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{Auth: "basic"})
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "docker")
	t.Setenv("DOCKER_CONFIG", dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	other := base64.StdEncoding.EncodeToString([]byte("u:p"))
	orig := `{"auths":{"other.test":{"auth":"` + other + `"}},"psFormat":"table {{.ID}}","plugins":{"x":{"k":"v"}},"experimentalThing":[1,2]}`
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(orig), 0o644); err != nil {
		t.Fatal(err)
	}

	c := New(Options{})
	if _, err := c.Resolve(ctx, reg.Host+"/login/app:1", nil); !errors.Is(err, errdefs.ErrPermission) {
		t.Fatalf("pull before login: %v, want ErrPermission", err)
	}
	if err := c.Login(ctx, "http://"+reg.Host+"/v2/", reg.User, reg.Password); err != nil {
		t.Fatal(err)
	}
	cfg := readConfig(t, dir)
	auths := cfg["auths"].(map[string]any)
	want := base64.StdEncoding.EncodeToString([]byte(reg.User + ":" + reg.Password))
	if got := auths[reg.Host].(map[string]any)["auth"]; got != want {
		t.Errorf("auths[%s].auth = %v, want %s", reg.Host, got, want)
	}
	if auths["other.test"].(map[string]any)["auth"] != other || cfg["psFormat"] != "table {{.ID}}" ||
		cfg["plugins"].(map[string]any)["x"].(map[string]any)["k"] != "v" || len(cfg["experimentalThing"].([]any)) != 2 {
		t.Errorf("other fields changed: %v", cfg)
	}
	if fi, err := os.Stat(filepath.Join(dir, "config.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("config.json mode: %v %v", fi.Mode(), err)
	}

	// A fresh client (fresh transports) pushes with the stored credentials.
	store := newBlobStore()
	img := buildImage(t, store, "amd64", [][]byte{randomLayer(t, 1<<10)})
	if _, err := New(Options{}).Push(ctx, reg.Host+"/login/app:1", store, img.PushImage, nil); err != nil {
		t.Fatalf("push with stored credentials: %v", err)
	}
	// So does the client that logged in, although it had been anonymous.
	if _, err := c.Resolve(ctx, reg.Host+"/login/app:1", nil); err != nil {
		t.Fatalf("pull by the client that logged in: %v", err)
	}

	if err := c.Logout(reg.Host); err != nil {
		t.Fatal(err)
	}
	auths = readConfig(t, dir)["auths"].(map[string]any)
	if _, ok := auths[reg.Host]; ok || auths["other.test"] == nil {
		t.Errorf("after logout auths = %v", auths)
	}
	if err := c.Logout(reg.Host); !errdefs.IsNotFound(err) {
		t.Errorf("second logout: %v, want ErrNotFound", err)
	}
	if _, err := New(Options{}).Resolve(ctx, reg.Host+"/login/app:1", nil); !errors.Is(err, errdefs.ErrPermission) {
		t.Errorf("pull after logout: %v, want ErrPermission", err)
	}
	// The client that logged out drops its authenticated transports too.
	if _, err := c.Resolve(ctx, reg.Host+"/login/app:1", nil); !errors.Is(err, errdefs.ErrPermission) {
		t.Errorf("pull by the same client after logout: %v, want ErrPermission", err)
	}
}

// TestLoginCredentialHelper stores credentials through a
// docker-credential-* helper named by credsStore, like docker.
func TestLoginCredentialHelper(t *testing.T) {
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{Auth: "token"})
	ctx := context.Background()
	bin := t.TempDir()
	secrets := filepath.Join(t.TempDir(), "secret.json")
	helper := `#!/bin/sh
case "$1" in
store) cat > "$BERTH_TEST_SECRETS" ;;
get) if [ -f "$BERTH_TEST_SECRETS" ]; then cat "$BERTH_TEST_SECRETS"; else echo "credentials not found in native keychain"; exit 1; fi ;;
erase) rm -f "$BERTH_TEST_SECRETS" ;;
esac
`
	if err := os.WriteFile(filepath.Join(bin, "docker-credential-berthtest"), []byte(helper), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("BERTH_TEST_SECRETS", secrets)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"credsStore":"berthtest"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	c := New(Options{ConfigDir: dir})
	if err := c.Login(ctx, reg.Host, reg.User, reg.Password); err != nil {
		t.Fatal(err)
	}
	var stored struct{ ServerURL, Username, Secret string }
	data, err := os.ReadFile(secrets)
	if err != nil || json.Unmarshal(data, &stored) != nil || stored.Username != reg.User || stored.Secret != reg.Password || stored.ServerURL != reg.Host {
		t.Fatalf("helper holds %q (%v)", data, err)
	}
	if entry := readConfig(t, dir)["auths"].(map[string]any)[reg.Host].(map[string]any); len(entry) != 0 {
		t.Errorf("config.json holds a secret beside the helper: %v", entry)
	}
	store := newBlobStore()
	img := buildImage(t, store, "amd64", [][]byte{randomLayer(t, 1<<10)})
	if _, err := New(Options{ConfigDir: dir}).Push(ctx, reg.Host+"/helper/app:1", store, img.PushImage, nil); err != nil {
		t.Fatalf("push with helper credentials: %v", err)
	}
	if err := c.Logout(reg.Host); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(secrets); !os.IsNotExist(err) {
		t.Errorf("helper still holds the secret: %v", err)
	}
}

// TestStoreLoginIdentityToken: a login that came with an identity token
// (a token service's refresh token) keeps the token, not the password, in
// either place docker keeps it, and the keychain hands it back as an
// identity token.
func TestStoreLoginIdentityToken(t *testing.T) {
	const host = "registry.test:5000"
	for _, tc := range []struct {
		name      string
		helper    bool
		token     string
		wantEntry map[string]any // config.json's auths[host] without a helper
		wantCreds map[string]any // the helper's stored credentials with one
	}{
		{"password", false, "", map[string]any{"auth": base64.StdEncoding.EncodeToString([]byte("u:pw"))}, nil},
		{"identity token", false, "tok", map[string]any{"auth": base64.StdEncoding.EncodeToString([]byte("u:")), "identitytoken": "tok"}, nil},
		{"identity token in a helper", true, "tok", map[string]any{}, map[string]any{"ServerURL": host, "Username": "<token>", "Secret": "tok"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			secrets := filepath.Join(t.TempDir(), "secret.json")
			if tc.helper {
				bin := t.TempDir()
				helper := "#!/bin/sh\ncase \"$1\" in\nstore) cat > \"$BERTH_TEST_SECRETS\" ;;\nget) cat \"$BERTH_TEST_SECRETS\" ;;\nesac\n"
				if err := os.WriteFile(filepath.Join(bin, "docker-credential-berthtest"), []byte(helper), 0o755); err != nil {
					t.Fatal(err)
				}
				t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
				t.Setenv("BERTH_TEST_SECRETS", secrets)
				if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"credsStore":"berthtest"}`), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			c := New(Options{ConfigDir: dir})
			if err := c.StoreLogin(host, "u", "pw", tc.token); err != nil {
				t.Fatal(err)
			}
			entry := readConfig(t, dir)["auths"].(map[string]any)[host].(map[string]any)
			if !reflect.DeepEqual(entry, tc.wantEntry) {
				t.Errorf("auths[%s] = %v, want %v", host, entry, tc.wantEntry)
			}
			if tc.helper {
				var creds map[string]any
				b, err := os.ReadFile(secrets)
				if err != nil || json.Unmarshal(b, &creds) != nil || !reflect.DeepEqual(creds, tc.wantCreds) {
					t.Errorf("helper holds %q (%v), want %v", b, err, tc.wantCreds)
				}
			}
			reg, err := name.NewRegistry(host)
			if err != nil {
				t.Fatal(err)
			}
			a, err := (configKeychain{dir: dir}).Resolve(reg)
			if err != nil {
				t.Fatal(err)
			}
			got, err := a.Authorization()
			if err != nil {
				t.Fatal(err)
			}
			if got.IdentityToken != tc.token || (tc.token == "" && got.Password != "pw") {
				t.Errorf("keychain gives %+v", got)
			}
		})
	}
}
