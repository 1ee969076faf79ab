package testutil

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// RegistryBinary is Debian's build of distribution v2 (package
// docker-registry): the real registry the registry client is tested
// against.
const RegistryBinary = "/usr/bin/docker-registry"

// RegistryOptions choose how a test registry authenticates.
type RegistryOptions struct {
	// Auth is "none" (or ""), "basic" (htpasswd) or "token" (Bearer
	// tokens from a token server StartRegistry runs beside it).
	Auth string
}

// Registry is a running test registry on loopback.
type Registry struct {
	Host     string // "127.0.0.1:PORT"
	User     string // credentials for "basic" and "token" ("" for "none")
	Password string
	Root     string // storage root directory
	// TokenRequests counts token requests served ("token" only), so tests
	// can see that credentials were exchanged.
	TokenRequests func() int
}

// StartRegistry runs docker-registry on a free loopback port with storage
// in a temporary directory, waits until /v2/ answers, and stops it when
// the test ends. It skips the test when the binary is missing.
func StartRegistry(t testing.TB, opts RegistryOptions) *Registry {
	t.Helper()
	if _, err := os.Stat(RegistryBinary); err != nil {
		t.Skipf("registry tests need %s (apt-get install docker-registry): %v", RegistryBinary, err)
	}
	dir := t.TempDir()
	reg := &Registry{Root: filepath.Join(dir, "storage"), TokenRequests: func() int { return 0 }}
	var authYAML string
	switch opts.Auth {
	case "", "none":
	case "basic", "token":
		reg.User = "berth"
		reg.Password = regRandomHex(t, 12)
		hash, err := bcrypt.GenerateFromPassword([]byte(reg.Password), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		if opts.Auth == "basic" {
			htpasswd := filepath.Join(dir, "htpasswd")
			regWriteFile(t, htpasswd, reg.User+":"+string(hash)+"\n")
			authYAML = fmt.Sprintf("auth:\n  htpasswd:\n    realm: berth-test\n    path: %s\n", htpasswd)
			break
		}
		ts := startTokenServer(t, reg.User, reg.Password)
		certFile := filepath.Join(dir, "token.crt")
		regWriteFile(t, certFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.certDER})))
		reg.TokenRequests = ts.requests
		authYAML = fmt.Sprintf("auth:\n  token:\n    realm: %s/token\n    service: %s\n    issuer: %s\n    rootcertbundle: %s\n",
			ts.url, tokenService, tokenIssuer, certFile)
	default:
		t.Fatalf("StartRegistry: unknown auth %q", opts.Auth)
	}

	// docker-registry cannot listen on port 0 and report the port, so pick
	// one that was free a moment ago and try again if someone took it.
	for attempt := 0; ; attempt++ {
		port := regFreePort(t)
		reg.Host = fmt.Sprintf("127.0.0.1:%d", port)
		config := filepath.Join(dir, "config.yml")
		regWriteFile(t, config, fmt.Sprintf(`version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
%s`, reg.Root, reg.Host, authYAML))
		var logs bytes.Buffer
		cmd := exec.Command(RegistryBinary, "serve", config)
		cmd.Stdout, cmd.Stderr = &regLogWriter{w: &logs}, &regLogWriter{w: &logs}
		if err := cmd.Start(); err != nil {
			t.Fatalf("start %s: %v", RegistryBinary, err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		stop := func() {
			cmd.Process.Kill()
			<-exited
		}
		if err := regWait(reg.Host, exited); err != nil {
			stop()
			if attempt < 4 && strings.Contains(logs.String(), "address already in use") {
				continue
			}
			t.Fatalf("registry did not start: %v\n%s", err, logs.String())
		}
		t.Cleanup(func() {
			stop()
			if t.Failed() {
				t.Logf("registry log:\n%s", logs.String())
			}
		})
		return reg
	}
}

// waitRegistry polls /v2/ until the registry answers (200 or 401).
func regWait(host string, exited <-chan struct{}) error {
	// Generous: on a loaded 2-CPU machine the registry has taken over 15 s
	// to listen.
	deadline := time.Now().Add(60 * time.Second)
	client := &http.Client{Timeout: 2 * time.Second}
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("docker-registry exited")
		default:
		}
		resp, err := client.Get("http://" + host + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("no answer on http://%s/v2/ after 60s", host)
}

func regFreePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func regWriteFile(t testing.TB, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func regRandomHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", b)
}

type regLogWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *regLogWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

const (
	tokenService = "berth-test-registry"
	tokenIssuer  = "berth-test-token-issuer"
)

// tokenServer issues registry Bearer tokens the way Docker Hub's auth
// service does (docs: distribution's "Token Authentication
// Specification"): GET /token?service=…&scope=… with Basic credentials
// returns a JWT granting the requested scopes. The JWT is ES256-signed and
// carries the signing certificate in its x5c header; distribution 2.8
// verifies that chain against the rootcertbundle (the same self-signed
// certificate) and then the signature with the leaf's key.
type tokenServer struct {
	url     string
	certDER []byte
	key     *ecdsa.PrivateKey
	user    string
	pass    string
	mu      sync.Mutex
	count   int
}

func startTokenServer(t testing.TB, user, pass string) *tokenServer {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: tokenIssuer},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ts := &tokenServer{certDER: der, key: key, user: user, pass: pass}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(ts.serve))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	// The realm is named "localhost", not 127.0.0.1: go-containerregistry
	// refuses token realms on loopback/private IP literals (an SSRF guard)
	// unless they are the registry's own host:port.
	ts.url = "http://localhost:" + fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
	return ts
}

func (ts *tokenServer) requests() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.count
}

func (ts *tokenServer) serve(w http.ResponseWriter, r *http.Request) {
	ts.mu.Lock()
	ts.count++
	ts.mu.Unlock()
	deny := func(msg string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprintf(w, `{"errors":[{"code":"UNAUTHORIZED","message":%q}]}`, msg)
	}
	user, pass, ok := r.BasicAuth()
	if !ok {
		deny("authentication required")
		return
	}
	if user != ts.user || pass != ts.pass {
		deny("incorrect username or password")
		return
	}
	if r.URL.Query().Get("service") != tokenService {
		deny("unknown service")
		return
	}
	type access struct {
		Type    string   `json:"type"`
		Name    string   `json:"name"`
		Actions []string `json:"actions"`
	}
	grants := []access{}
	for _, s := range r.URL.Query()["scope"] {
		for _, one := range strings.Fields(s) {
			// "repository:NAME:push,pull"; NAME may hold a port's colon
			// only in the host part, which repository scopes never carry.
			i, j := strings.Index(one, ":"), strings.LastIndex(one, ":")
			if i < 0 || i == j {
				continue
			}
			grants = append(grants, access{Type: one[:i], Name: one[i+1 : j], Actions: strings.Split(one[j+1:], ",")})
		}
	}
	now := time.Now()
	claims := map[string]any{
		"iss":    tokenIssuer,
		"sub":    user,
		"aud":    tokenService,
		"exp":    now.Add(5 * time.Minute).Unix(),
		"nbf":    now.Add(-time.Minute).Unix(),
		"iat":    now.Unix(),
		"jti":    fmt.Sprintf("%d", now.UnixNano()),
		"access": grants,
	}
	token, err := ts.sign(claims)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"token":        token,
		"access_token": token,
		"expires_in":   300,
		"issued_at":    now.UTC().Format(time.RFC3339),
	})
}

// sign makes a compact JWS: base64url(header).base64url(claims).sig with
// the ES256 signature as the fixed-width r||s pair JOSE requires.
func (ts *tokenServer) sign(claims map[string]any) (string, error) {
	header := map[string]any{
		"typ": "JWT",
		"alg": "ES256",
		"x5c": []string{base64.StdEncoding.EncodeToString(ts.certDER)},
	}
	enc := func(v any) (string, error) {
		b, err := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b), err
	}
	h, err := enc(header)
	if err != nil {
		return "", err
	}
	c, err := enc(claims)
	if err != nil {
		return "", err
	}
	signing := h + "." + c
	sum := sha256.Sum256([]byte(signing))
	r, s, err := ecdsa.Sign(rand.Reader, ts.key, sum[:])
	if err != nil {
		return "", err
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}
