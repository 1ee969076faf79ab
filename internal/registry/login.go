package registry

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/docker/docker-credential-helpers/client"
	"github.com/docker/docker-credential-helpers/credentials"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// VerifyLogin checks credentials against server (spelled as for Login)
// and stores them nowhere, as dockerd's POST /auth does: the registry's
// token service, when it has one, must hand out a token for them, and
// /v2/ must then answer 200. It returns the identity token (an OAuth
// refresh token) when the token service gives one, for the caller to keep
// instead of the password. Refused credentials are errdefs.ErrPermission
// with dockerd's words ("login attempt to URL failed with status: 401
// Unauthorized").
func (c *Client) VerifyLogin(ctx context.Context, server string, ac authn.AuthConfig) (string, error) {
	host := hostOf(authKey(server))
	if !hasSecret(ac) {
		return "", fmt.Errorf("login %s: %w: a password or token is required", host, errdefs.ErrInvalidArgument)
	}
	reg, err := c.registry(host)
	if err != nil {
		return "", err
	}
	base := c.base(reg)
	ch, err := transport.Ping(ctx, reg, base)
	if err != nil {
		return "", fmt.Errorf("login %s: %w", host, classify(err, "registry "+host))
	}
	auth := authn.FromConfig(ac)
	tok := &transport.Token{}
	if strings.EqualFold(ch.Scheme, "bearer") {
		// No scope: like docker login, this asks only whether the token
		// service accepts the credentials.
		tok, err = transport.Exchange(ctx, reg, auth, base, nil, ch)
		if err != nil {
			return "", fmt.Errorf("login %s: %w", host, classify(err, "registry "+host))
		}
		if tok.Token == "" {
			tok.Token = tok.AccessToken
		}
	}
	// A Basic (or no) challenge: FromToken gives the Basic transport and
	// nothing has been checked yet; with a token /v2/ confirms the registry
	// takes it.
	rt, err := transport.FromToken(reg, auth, base, ch, tok)
	if err != nil {
		return "", fmt.Errorf("login %s: %w", host, classify(err, "registry "+host))
	}
	scheme := "https"
	if ch.Insecure {
		scheme = "http"
	}
	endpoint := fmt.Sprintf("%s://%s/v2/", scheme, reg.RegistryStr())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint, nil)
	if err != nil {
		return "", err
	}
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		return "", fmt.Errorf("login %s: %w", host, classify(err, "registry "+host))
	}
	drain(resp)
	if resp.StatusCode != http.StatusOK {
		kind := errdefs.ErrUnavailable
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			kind = errdefs.ErrPermission
		}
		return "", &regError{kind: kind, msg: fmt.Sprintf("login attempt to %s failed with status: %d %s", endpoint, resp.StatusCode, http.StatusText(resp.StatusCode))}
	}
	return tok.RefreshToken, nil
}

// Login checks user and password against server (a host, "host:port", or
// a URL; "" and docker.io mean Docker Hub) the way the registry asks for:
// a Bearer token from its token service, or Basic auth on /v2/ (see
// VerifyLogin). Refused credentials are errdefs.ErrPermission. What was
// accepted is stored as StoreLogin stores it: the identity token the token
// service gave, when it gave one, in place of the password.
func (c *Client) Login(ctx context.Context, server, user, password string) error {
	if user == "" || password == "" {
		return fmt.Errorf("login %s: %w: user and password are required", hostOf(authKey(server)), errdefs.ErrInvalidArgument)
	}
	token, err := c.VerifyLogin(ctx, server, authn.AuthConfig{Username: user, Password: password})
	if err != nil {
		return err
	}
	return c.StoreLogin(server, user, password, token)
}

// StoreLogin keeps a login that a registry accepted (VerifyLogin here, or
// a daemon's POST /auth for `berth --host login`) as docker does, without
// talking to the registry: in the credential helper config.json names for
// the server, else as auths[KEY] in config.json, KEY being
// "https://index.docker.io/v1/" for Docker Hub and the host otherwise.
// With an identity token (an OAuth refresh token), that is kept instead of
// the password: {"auth": base64("USER:"), "identitytoken": TOKEN}, or the
// helper entry with username "<token>"; the keychain sends it back as
// such. Entries for the same host under other spellings go; other
// contents of config.json are kept.
func (c *Client) StoreLogin(server, user, password, identityToken string) error {
	key := authKey(server)
	host := hostOf(key)
	unlock, err := lockConfig(c.configDir())
	if err != nil {
		return fmt.Errorf("login %s: %w", host, err)
	}
	defer unlock()
	cf, err := loadConfig(c.configDir())
	if err != nil {
		return fmt.Errorf("login %s: %w", host, err)
	}
	entry := map[string]json.RawMessage{}
	if h := cf.helper(key); h != "" {
		creds := &credentials.Credentials{ServerURL: key, Username: user, Secret: password}
		if identityToken != "" {
			creds.Username, creds.Secret = tokenUsername, identityToken
		}
		if err := client.Store(helperProgram(h), creds); err != nil {
			return fmt.Errorf("login %s: credential helper %s: %w", host, h, err)
		}
	} else {
		secret := password
		if identityToken != "" {
			secret = ""
			entry["identitytoken"], _ = json.Marshal(identityToken)
		}
		entry["auth"], _ = json.Marshal(base64.StdEncoding.EncodeToString([]byte(user + ":" + secret)))
	}
	for k := range cf.auths {
		if hostOf(k) == host {
			delete(cf.auths, k)
		}
	}
	cf.auths[key] = entry
	if err := cf.save(); err != nil {
		return fmt.Errorf("login %s: %w", host, err)
	}
	if reg, err := c.registry(host); err == nil {
		c.forget(reg.RegistryStr())
	}
	return nil
}

// Logout forgets the credentials for server (spelled as for Login). It is
// errdefs.ErrNotFound when there were none.
func (c *Client) Logout(server string) error {
	key := authKey(server)
	host := hostOf(key)
	unlock, err := lockConfig(c.configDir())
	if err != nil {
		return fmt.Errorf("logout %s: %w", host, err)
	}
	defer unlock()
	cf, err := loadConfig(c.configDir())
	if err != nil {
		return fmt.Errorf("logout %s: %w", host, err)
	}
	found := false
	if h := cf.helper(key); h != "" {
		err := client.Erase(helperProgram(h), key)
		if err == nil {
			found = true
		} else if !credentials.IsErrCredentialsNotFound(err) {
			return fmt.Errorf("logout %s: credential helper %s: %w", host, h, err)
		}
	}
	for k := range cf.auths {
		if hostOf(k) == host {
			delete(cf.auths, k)
			found = true
		}
	}
	if !found {
		return fmt.Errorf("logout: %w: not logged in to %s", errdefs.ErrNotFound, host)
	}
	if err := cf.save(); err != nil {
		return fmt.Errorf("logout %s: %w", host, err)
	}
	if reg, err := c.registry(host); err == nil {
		c.forget(reg.RegistryStr())
	}
	return nil
}
