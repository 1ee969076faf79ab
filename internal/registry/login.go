package registry

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/docker/docker-credential-helpers/client"
	"github.com/docker/docker-credential-helpers/credentials"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Login checks user and password against server (a host, "host:port", or
// a URL; "" and docker.io mean Docker Hub) the way the registry asks for:
// a Bearer token from its token service, or Basic auth on /v2/. Refused
// credentials are errdefs.ErrPermission. On success they are stored like
// docker: in the credential helper config.json names for the server, else
// as auths[KEY].auth = base64(user:password) in config.json, KEY being
// "https://index.docker.io/v1/" for Docker Hub and the host otherwise.
// Other contents of config.json are kept.
func (c *Client) Login(ctx context.Context, server, user, password string) error {
	key := authKey(server)
	host := hostOf(key)
	if user == "" || password == "" {
		return fmt.Errorf("login %s: %w: user and password are required", host, errdefs.ErrInvalidArgument)
	}
	reg, err := c.registry(host)
	if err != nil {
		return err
	}
	auth := authn.FromConfig(authn.AuthConfig{Username: user, Password: password})
	rt, err := transport.NewWithContext(ctx, reg, auth, c.base(reg), nil)
	if err != nil {
		return fmt.Errorf("login %s: %w", host, classify(err, "registry "+host))
	}
	// With Basic auth nothing has been checked yet; with a token it has,
	// and /v2/ confirms the registry accepts the token.
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s://%s/v2/", reg.Scheme(), reg.RegistryStr()), nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		return fmt.Errorf("login %s: %w", host, classify(err, "registry "+host))
	}
	drain(resp)
	if err := checkResponse(resp, "registry "+host, http.StatusOK); err != nil {
		return fmt.Errorf("login %s: %w", host, err)
	}

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
		if err := client.Store(helperProgram(h), &credentials.Credentials{ServerURL: key, Username: user, Secret: password}); err != nil {
			return fmt.Errorf("login %s: credential helper %s: %w", host, h, err)
		}
	} else {
		auth, _ := json.Marshal(base64.StdEncoding.EncodeToString([]byte(user + ":" + password)))
		entry["auth"] = auth
	}
	// Entries for the same host under other spellings would shadow or
	// contradict the new one.
	for k := range cf.auths {
		if hostOf(k) == host {
			delete(cf.auths, k)
		}
	}
	cf.auths[key] = entry
	if err := cf.save(); err != nil {
		return fmt.Errorf("login %s: %w", host, err)
	}
	c.forget(reg.RegistryStr())
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
