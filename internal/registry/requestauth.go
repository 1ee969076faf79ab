package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/docker/docker-credential-helpers/client"
	"github.com/google/go-containerregistry/pkg/authn"
)

// AuthConfig is one registry's credentials, with docker's JSON field names
// (username, password, auth, identitytoken, registrytoken).
type AuthConfig = authn.AuthConfig

// Credentials are registry credentials that come with one operation
// instead of from config.json: what dockerd receives in X-Registry-Auth
// (pull, push) and X-Registry-Config (build). Keys name registries the way
// docker's config.json does ("host[:port]", "http://host:port", or
// "https://index.docker.io/v1/" for Docker Hub) and are matched by host.
// An entry that carries no secret does not count: the docker CLI sends
// {"serveraddress": …} alone when it has nothing for a registry.
type Credentials map[string]AuthConfig

var _ authn.Keychain = Credentials(nil)

// CredentialsFor keys ac by the registry ref names. dockerd applies the
// X-Registry-Auth of a pull or push to the image's registry whatever the
// AuthConfig's serveraddress says, and so does this.
func CredentialsFor(ref string, ac authn.AuthConfig) (Credentials, error) {
	name, err := Normalize(ref)
	if err != nil {
		return nil, err
	}
	host, _, _ := strings.Cut(name, "/")
	return Credentials{host: ac}, nil
}

// Empty reports whether no entry carries a secret.
func (cr Credentials) Empty() bool {
	for _, ac := range cr {
		if hasSecret(ac) {
			return false
		}
	}
	return true
}

// Resolve finds the entry for a registry (authn.Keychain); none is
// authn.Anonymous, which lets a multi-keychain fall through to the next.
func (cr Credentials) Resolve(res authn.Resource) (authn.Authenticator, error) {
	key := authKey(res.RegistryStr())
	for k, ac := range cr {
		if authKey(k) == key && hasSecret(ac) {
			return authn.FromConfig(ac), nil
		}
	}
	return authn.Anonymous, nil
}

func hasSecret(ac authn.AuthConfig) bool {
	return ac.Password != "" || ac.Auth != "" || ac.IdentityToken != "" || ac.RegistryToken != ""
}

// WithCredentials returns a Client for one operation that authenticates
// with cr first and with config.json (or its credential helper) for the
// registries cr has nothing for; with an empty cr it is c itself. The
// returned Client shares c's connection pools but not its cache of
// authenticated transports: a token obtained with one caller's
// credentials must never serve another caller.
func (c *Client) WithCredentials(cr Credentials) *Client {
	if cr.Empty() {
		return c
	}
	return &Client{
		opts:       c.opts,
		insecure:   c.insecure,
		secure:     c.secure,
		lax:        c.lax,
		creds:      cr,
		transports: map[string]*cachedTransport{},
	}
}

// AuthConfig returns what config.json (or the credential helper it names)
// holds for server (spelled as for Login), the user and password decoded,
// as docker's CLI sends them in X-Registry-Auth. Nothing stored is the
// zero AuthConfig, not an error.
func (c *Client) AuthConfig(ctx context.Context, server string) (authn.AuthConfig, error) {
	reg, err := c.registry(hostOf(authKey(server)))
	if err != nil {
		return authn.AuthConfig{}, err
	}
	auth, err := c.keychain().Resolve(reg)
	if err != nil {
		return authn.AuthConfig{}, err
	}
	if auth == authn.Anonymous {
		return authn.AuthConfig{}, nil
	}
	ac, err := authn.Authorization(ctx, auth)
	if err != nil {
		return authn.AuthConfig{}, fmt.Errorf("credentials for %s: %w", hostOf(authKey(server)), err)
	}
	return *ac, nil
}

// AllCredentials returns every registry's credentials config.json knows:
// its auths, the registries of credHelpers, and what the credsStore
// helper lists — what docker's CLI sends in X-Registry-Config with a
// build, whose FROM lines may name any registry.
func (c *Client) AllCredentials(ctx context.Context) (Credentials, error) {
	cf, err := loadConfig(c.configDir())
	if err != nil {
		return nil, err
	}
	keys := map[string]bool{}
	for k := range cf.auths {
		keys[k] = true
	}
	var helpers map[string]string
	if raw, ok := cf.fields["credHelpers"]; ok {
		_ = json.Unmarshal(raw, &helpers)
	}
	for k := range helpers {
		keys[k] = true
	}
	var store string
	if raw, ok := cf.fields["credsStore"]; ok {
		_ = json.Unmarshal(raw, &store)
	}
	if store != "" {
		listed, err := client.List(helperProgram(store))
		if err != nil {
			return nil, fmt.Errorf("credential helper %s: list: %w", store, err)
		}
		for k := range listed {
			keys[k] = true
		}
	}
	out := Credentials{}
	for k := range keys {
		ac, err := c.AuthConfig(ctx, k)
		if err != nil {
			return nil, err
		}
		if hasSecret(ac) {
			out[authKey(k)] = ac
		}
	}
	return out, nil
}
