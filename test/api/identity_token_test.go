//go:build linux

package api_test

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
)

// oauthFront gives a token-auth test registry Docker Hub's OAuth
// behaviour: its token service answers a login with a refresh token (the
// "identity token" dockerd's /auth returns), and takes that token back
// with grant_type=refresh_token for access tokens, which it gets from the
// real token service with the credentials it stands for. The registry is
// reached through a proxy whose challenges name this token service.
type oauthFront struct {
	host string // the registry as clients name it, 127.0.0.1:PORT

	mu       sync.Mutex
	upstream string               // the real token service's realm
	refresh  map[string][2]string // refresh token → user, password
	grants   int                  // refresh-token grants served
}

var realmRe = regexp.MustCompile(`realm="([^"]*)"`)

func startOAuthFront(t *testing.T, reg *testutil.Registry) *oauthFront {
	t.Helper()
	f := &oauthFront{refresh: map[string][2]string{}}
	tokL, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tok := httptest.NewUnstartedServer(http.HandlerFunc(f.token))
	tok.Listener = tokL
	tok.Start()
	t.Cleanup(tok.Close)
	// "localhost", as testutil's realm: go-containerregistry refuses
	// realms on loopback IP literals other than the registry's own.
	realm := "http://localhost:" + strings.TrimPrefix(tok.Listener.Addr().String(), "127.0.0.1:") + "/token"

	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: reg.Host})
	proxy.ModifyResponse = func(resp *http.Response) error {
		if c := resp.Header.Get("WWW-Authenticate"); c != "" {
			if m := realmRe.FindStringSubmatch(c); m != nil {
				f.mu.Lock()
				f.upstream = m[1]
				f.mu.Unlock()
			}
			resp.Header.Set("WWW-Authenticate", realmRe.ReplaceAllString(c, `realm="`+realm+`"`))
		}
		return nil
	}
	regL, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewUnstartedServer(proxy)
	front.Listener = regL
	front.Start()
	t.Cleanup(front.Close)
	f.host = regL.Addr().String()
	return f
}

// token serves GET (Basic credentials: the real service's answer plus a
// refresh token) and POST grant_type=refresh_token.
func (f *oauthFront) token(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	upstream := f.upstream
	f.mu.Unlock()
	q := r.URL.Query()
	user, pass, ok := r.BasicAuth()
	var refresh string
	if r.Method == http.MethodPost {
		if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "refresh_token" {
			http.Error(w, `{"error":"unsupported_grant_type"}`, http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		creds, known := f.refresh[r.PostForm.Get("refresh_token")]
		f.grants++
		f.mu.Unlock()
		if !known {
			http.Error(w, `{"error":"invalid_grant"}`, http.StatusUnauthorized)
			return
		}
		user, pass, ok = creds[0], creds[1], true
		refresh = r.PostForm.Get("refresh_token")
		q = url.Values{"service": {r.PostForm.Get("service")}, "scope": r.PostForm["scope"]}
	}
	if !ok || upstream == "" {
		http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
		return
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, upstream+"?"+q.Encode(), nil)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	req.SetBasicAuth(user, pass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(body)
		return
	}
	var answer map[string]any
	if err := json.Unmarshal(body, &answer); err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	if refresh == "" {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		refresh = "refresh-" + hex.EncodeToString(b)
		f.mu.Lock()
		f.refresh[refresh] = [2]string{user, pass}
		f.mu.Unlock()
	}
	answer["refresh_token"] = refresh
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(answer)
}

func (f *oauthFront) refreshGrants() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.grants
}

// TestLoginIdentityToken: against a registry whose token service hands
// out refresh tokens, berthd's /auth returns the identity token, `berth
// --host login` keeps it in config.json in place of the password (as the
// docker CLI does, checked beside it), and push and pull — the latter on
// a daemon that never saw a login — send it in X-Registry-Auth, which
// berthd trades for access tokens.
func TestLoginIdentityToken(t *testing.T) {
	t.Setenv("DOCKER_CONFIG", t.TempDir()) // the daemons', inherited at start
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{Auth: "token"})
	f := startOAuthFront(t, reg)
	first, fresh := startDaemon(t), startDaemon(t)
	first.loadBusybox()
	clientCfg := t.TempDir()
	berth := runner(t, filepath.Join(binDir, "berth"))
	env := []string{"DOCKER_CONFIG=" + clientCfg}
	ref := f.host + "/idtok/busybox:1"
	must := func(d *daemon, want string, args ...string) {
		t.Helper()
		out, ok := berth(env, "", append([]string{"--host", d.host()}, args...)...)
		if !ok || !strings.Contains(out, want) {
			t.Fatalf("berth %v: ok=%v, want %q in:\n%s\nberthd: %s", args, ok, want, out, d.daemonLog())
		}
	}

	must(first, "Login Succeeded", "login", "-u", reg.User, "-p", reg.Password, f.host)
	b, err := os.ReadFile(filepath.Join(clientCfg, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct{ Auths map[string]map[string]string }
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatalf("config.json: %v\n%s", err, b)
	}
	entry := cfg.Auths[f.host]
	f.mu.Lock()
	_, issued := f.refresh[entry["identitytoken"]]
	f.mu.Unlock()
	if !issued || entry["auth"] != base64.StdEncoding.EncodeToString([]byte(reg.User+":")) {
		t.Errorf("auths[%s] = %v: want the issued identity token and %q without a password", f.host, entry, reg.User+":")
	}
	if strings.Contains(string(b), reg.Password) || strings.Contains(string(b), base64.StdEncoding.EncodeToString([]byte(reg.User+":"+reg.Password))) {
		t.Errorf("config.json holds the password:\n%s", b)
	}

	must(first, "", "tag", "busybox", ref)
	must(first, "digest: sha256:", "push", ref)
	must(fresh, "Downloaded newer image for "+ref, "pull", ref)
	if f.refreshGrants() == 0 {
		t.Error("no refresh-token grant: the daemons did not use the identity token")
	}

	// The stock docker CLI stores the same from the same /auth answer.
	if dockerBin, err := exec.LookPath("docker"); err == nil {
		dockerCfg := t.TempDir()
		out, ok := runner(t, dockerBin)([]string{"DOCKER_HOST=" + first.host(), "DOCKER_CONFIG=" + dockerCfg}, reg.Password+"\n",
			"login", "-u", reg.User, "--password-stdin", f.host)
		b, _ := os.ReadFile(filepath.Join(dockerCfg, "config.json"))
		if !ok || !strings.Contains(string(b), `"identitytoken"`) {
			t.Errorf("docker login through berthd: ok=%v\n%s\nconfig.json: %s", ok, out, b)
		}
	}
}
