// Package registry is berth's OCI distribution client: it resolves
// references to manifests, streams blobs and manifests out of a registry,
// pushes images into one, and logs in and out like `docker login`.
//
// The HTTP conversation (ping, Basic and Bearer token auth, token refresh)
// is go-containerregistry's remote/transport; everything above it (manifest
// negotiation, platform selection, blob streaming with verification,
// uploads with mounts and per-layer progress) is written here so the bytes
// flow straight from the socket to the caller once, verified, and errors are
// classified with internal/errdefs.
//
// API:
//
//   - Normalize / FamiliarName: "busybox" ⇄ "docker.io/library/busybox:latest".
//   - New(Options) *Client: one client per process; it pools connections and
//     caches authenticated transports per registry and scope.
//   - Client.Resolve(ctx, ref, platform): the manifest a reference names; an
//     index is resolved to the manifest for the platform (nil = this host).
//   - Client.Fetcher(repo).Fetch(ctx, desc): a verified stream of a blob or
//     manifest (satisfies image.Fetcher structurally); safe for concurrent use.
//   - Client.Push(ctx, ref, src, img, progress): uploads missing blobs in
//     parallel (HEAD first, cross-repository mount when possible), then the
//     manifest. An index is pushed by first pushing each child manifest by
//     digest ("repo@sha256:…") and then the index with empty Config/Layers.
//   - Client.Login / Client.Logout: verify credentials and keep them in
//     config.json (or the configured credential helper), like docker;
//     Client.VerifyLogin only verifies (dockerd's POST /auth).
//   - Client.WithCredentials(Credentials): a Client for one operation whose
//     caller brought its own credentials (X-Registry-Auth, X-Registry-Config);
//     config.json is consulted only for registries they do not cover.
//     Client.AuthConfig / AllCredentials read config.json the other way, for
//     a client that sends its credentials along.
//
// Errors: a missing manifest, blob or repository is errdefs.ErrNotFound; a
// refused credential or scope is errdefs.ErrPermission carrying the
// registry's message; a malformed reference is errdefs.ErrInvalidArgument;
// an unreachable or overloaded registry is errdefs.ErrUnavailable; schema 1
// manifests are errdefs.ErrNotSupported.
//
// Plain HTTP is used only for loopback registries (localhost, 127.0.0.0/8,
// ::1) and those named in Options.Insecure (for which TLS certificates are
// not verified either, like docker's insecure-registries). Every other
// registry is HTTPS only, even on private addresses where
// go-containerregistry alone would fall back to HTTP.
package registry

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Options configure a Client.
type Options struct {
	// Insecure lists registries ("host" or "host:port") reached over plain
	// HTTP or HTTPS without certificate checks.
	Insecure []string
	// ConfigDir holds config.json; "" means $DOCKER_CONFIG, else ~/.docker.
	ConfigDir string
	// UserAgent is sent with every request ("" = go-containerregistry's).
	UserAgent string
	// Transport carries the requests (nil = a pooled http.Transport). It is
	// used as is for every registry, insecure ones included.
	Transport http.RoundTripper
}

// Client talks to registries. It is safe for concurrent use.
type Client struct {
	opts     Options
	insecure map[string]bool
	secure   http.RoundTripper // verified TLS
	lax      http.RoundTripper // insecure registries: TLS unchecked
	creds    Credentials       // an operation's own, before config.json (WithCredentials)

	mu         sync.Mutex
	transports map[string]*cachedTransport
}

// cachedTransport is an authenticated transport being (or already) set up;
// ready is closed when rt or err is set, so concurrent users of the same
// registry and scope share one ping and one token exchange.
type cachedTransport struct {
	ready   chan struct{}
	rt      http.RoundTripper
	err     error
	created time.Time
}

// transportTTL bounds how long credentials read from config.json are
// reused: another process's `login` or `logout` is seen within it. (Tokens
// are refreshed by the bearer transport itself when they expire.)
const transportTTL = 5 * time.Minute

// New returns a Client.
func New(opts Options) *Client {
	c := &Client{
		opts:       opts,
		insecure:   map[string]bool{},
		transports: map[string]*cachedTransport{},
	}
	for _, h := range opts.Insecure {
		c.insecure[strings.TrimSuffix(stripScheme(h), "/")] = true
	}
	if opts.Transport != nil {
		c.secure, c.lax = opts.Transport, opts.Transport
		return c
	}
	base := http.DefaultTransport.(*http.Transport).Clone()
	// Pulls fetch several layers of one registry at once; keep those
	// connections for the next blob instead of re-dialing (and re-doing
	// TLS) for each.
	base.MaxIdleConnsPerHost = 16
	c.secure = base
	lax := base.Clone()
	lax.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the user named this registry insecure
	c.lax = lax
	return c
}

// allowHTTP reports whether a registry host may be spoken to without TLS.
func (c *Client) allowHTTP(host string) bool {
	if c.insecure[host] {
		return true
	}
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	h = strings.Trim(h, "[]")
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// registry returns the name.Registry for host with the insecure flag set
// when plain HTTP is allowed (go-containerregistry then pings HTTPS and
// falls back to HTTP).
func (c *Client) registry(host string) (name.Registry, error) {
	var opts []name.Option
	if c.allowHTTP(host) {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(host, opts...)
	if err != nil {
		return name.Registry{}, invalid(host, err)
	}
	return reg, nil
}

// base is the unauthenticated transport for a registry: the shared pool,
// the user agent, and a guard that refuses plain HTTP to registries that
// are not allowed it.
func (c *Client) base(reg name.Registry) http.RoundTripper {
	rt := c.secure
	if c.insecure[reg.RegistryStr()] {
		rt = c.lax
	}
	rt = &retryTransport{inner: rt, backoff: defaultBackoff}
	rt = &httpGuard{inner: rt, host: reg.RegistryStr(), allowHTTP: c.allowHTTP(reg.RegistryStr())}
	return transport.NewUserAgent(rt, c.opts.UserAgent)
}

// transport returns an authenticated transport for repo with the given
// scopes ("repository:NAME:pull"), cached per registry and scope set.
func (c *Client) transport(ctx context.Context, reg name.Registry, scopes []string) (http.RoundTripper, error) {
	sorted := append([]string(nil), scopes...)
	sort.Strings(sorted)
	key := reg.RegistryStr() + "|" + strings.Join(sorted, " ")

	c.mu.Lock()
	ct, ok := c.transports[key]
	if ok && ct.done() && time.Since(ct.created) > transportTTL {
		ok = false
	}
	if !ok {
		ct = &cachedTransport{ready: make(chan struct{}), created: time.Now()}
		c.transports[key] = ct
	}
	c.mu.Unlock()
	if ok {
		select {
		case <-ct.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if ct.err == nil {
			return ct.rt, nil
		}
		// The owner failed and removed the entry; try on our own.
		return c.transport(ctx, reg, scopes)
	}

	auth, err := c.keychain().Resolve(reg)
	if err == nil {
		ct.rt, err = transport.NewWithContext(ctx, reg, auth, c.base(reg), scopes)
	}
	if err != nil {
		ct.err = classify(err, "registry "+reg.RegistryStr())
		c.mu.Lock()
		if c.transports[key] == ct {
			delete(c.transports, key)
		}
		c.mu.Unlock()
	}
	close(ct.ready)
	return ct.rt, ct.err
}

func (ct *cachedTransport) done() bool {
	select {
	case <-ct.ready:
		return true
	default:
		return false
	}
}

// forget drops the cached transports of a registry host, so that the next
// request reads the credentials Login or Logout just changed.
func (c *Client) forget(host string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.transports {
		if strings.HasPrefix(k, host+"|") {
			delete(c.transports, k)
		}
	}
}

// configDir is where config.json lives.
func (c *Client) configDir() string {
	if c.opts.ConfigDir != "" {
		return c.opts.ConfigDir
	}
	if d := os.Getenv("DOCKER_CONFIG"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ".docker"
	}
	return filepath.Join(home, ".docker")
}

// keychain finds credentials: the operation's own (WithCredentials) for
// the registries it has them for, else config.json's.
func (c *Client) keychain() authn.Keychain {
	kc := authn.Keychain(configKeychain{dir: c.configDir()})
	if !c.creds.Empty() {
		kc = authn.NewMultiKeychain(c.creds, kc)
	}
	return kc
}

// httpGuard refuses plain-HTTP requests to a registry that is neither
// loopback nor listed as insecure. go-containerregistry treats private
// (RFC 1918) addresses as HTTP-capable and falls back to HTTP when HTTPS
// fails; docker does not, and neither do we: a network attacker could
// otherwise force a downgrade and read credentials.
type httpGuard struct {
	inner     http.RoundTripper
	host      string
	allowHTTP bool
}

func (g *httpGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" && !g.allowHTTP && req.URL.Host == g.host {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, fmt.Errorf("refusing plain HTTP to registry %s: it is not an insecure registry", g.host)
	}
	return g.inner.RoundTrip(req)
}

func stripScheme(s string) string {
	s = strings.TrimPrefix(s, "https://")
	return strings.TrimPrefix(s, "http://")
}
