package registry

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth/internal/atomicfile"
	"github.com/docker/docker-credential-helpers/client"
	"github.com/docker/docker-credential-helpers/credentials"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

// dockerHubAuthKey is the config.json key docker has always used for
// Docker Hub, whatever host the client talks to.
const dockerHubAuthKey = "https://index.docker.io/v1/"

// configFile is config.json kept as raw JSON so that writing back touches
// only the keys berth owns.
type configFile struct {
	path   string
	fields map[string]json.RawMessage
	auths  map[string]map[string]json.RawMessage
}

func loadConfig(dir string) (*configFile, error) {
	cf := &configFile{
		path:   filepath.Join(dir, "config.json"),
		fields: map[string]json.RawMessage{},
		auths:  map[string]map[string]json.RawMessage{},
	}
	data, err := os.ReadFile(cf.path)
	if errors.Is(err, os.ErrNotExist) {
		return cf, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read docker config: %w", err)
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		return cf, nil
	}
	if err := json.Unmarshal(data, &cf.fields); err != nil {
		return nil, fmt.Errorf("parse %s: %w", cf.path, err)
	}
	if raw, ok := cf.fields["auths"]; ok {
		if err := json.Unmarshal(raw, &cf.auths); err != nil {
			return nil, fmt.Errorf("parse %s: auths: %w", cf.path, err)
		}
		if cf.auths == nil {
			cf.auths = map[string]map[string]json.RawMessage{}
		}
	}
	return cf, nil
}

// helper names the credential helper for key: credHelpers[host] first,
// then credsStore, like docker.
func (cf *configFile) helper(key string) string {
	var helpers map[string]string
	if raw, ok := cf.fields["credHelpers"]; ok && json.Unmarshal(raw, &helpers) == nil {
		if h := helpers[hostOf(key)]; h != "" {
			return h
		}
		if h := helpers[key]; h != "" {
			return h
		}
	}
	var store string
	if raw, ok := cf.fields["credsStore"]; ok && json.Unmarshal(raw, &store) == nil {
		return store
	}
	return ""
}

// authFor returns the auths entry for key, matching by host as docker does
// for entries written as "https://host/v1/" or "http://host".
func (cf *configFile) authFor(key string) (map[string]json.RawMessage, bool) {
	if e, ok := cf.auths[key]; ok {
		return e, true
	}
	for k, e := range cf.auths {
		if hostOf(k) == hostOf(key) {
			return e, true
		}
	}
	return nil, false
}

func str(e map[string]json.RawMessage, k string) string {
	var s string
	if raw, ok := e[k]; ok {
		_ = json.Unmarshal(raw, &s)
	}
	return s
}

// save writes config.json atomically with mode 0600 (through a symlink
// to its target, as docker does).
func (cf *configFile) save() error {
	if len(cf.auths) > 0 || cf.fields["auths"] != nil {
		raw, err := json.Marshal(cf.auths)
		if err != nil {
			return err
		}
		cf.fields["auths"] = raw
	}
	data, err := json.MarshalIndent(cf.fields, "", "\t")
	if err != nil {
		return err
	}
	target := cf.path
	if t, err := filepath.EvalSymlinks(cf.path); err == nil {
		target = t
	}
	dir := filepath.Dir(target)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save docker config: %w", err)
	}
	if err := atomicfile.Write(target, append(data, '\n'), 0o600, atomicfile.Durable); err != nil {
		return fmt.Errorf("save docker config: %w", err)
	}
	return nil
}

// hostOf strips a config key to its host: "https://index.docker.io/v1/"
// → "index.docker.io".
func hostOf(key string) string {
	h := stripScheme(key)
	if i := strings.IndexByte(h, '/'); i >= 0 {
		h = h[:i]
	}
	return h
}

// authKey is the config.json key for a registry host or login server.
func authKey(server string) string {
	switch h := hostOf(server); h {
	case "", dockerHub, name.DefaultRegistry, "registry-1.docker.io":
		return dockerHubAuthKey
	default:
		return h
	}
}

// tokenUsername is docker's username for an identity token kept in a
// credential helper.
const tokenUsername = "<token>"

// configKeychain reads credentials like docker: config.json's auths, or
// the credential helper it names.
type configKeychain struct{ dir string }

func (k configKeychain) Resolve(res authn.Resource) (authn.Authenticator, error) {
	cf, err := loadConfig(k.dir)
	if err != nil {
		return nil, err
	}
	key := authKey(res.RegistryStr())
	if h := cf.helper(key); h != "" {
		creds, err := client.Get(helperProgram(h), key)
		if credentials.IsErrCredentialsNotFound(err) {
			return authn.Anonymous, nil
		}
		if err != nil {
			return nil, fmt.Errorf("credential helper %s: %w", h, err)
		}
		if creds.Username == tokenUsername {
			return authn.FromConfig(authn.AuthConfig{IdentityToken: creds.Secret}), nil
		}
		return authn.FromConfig(authn.AuthConfig{Username: creds.Username, Password: creds.Secret}), nil
	}
	e, ok := cf.authFor(key)
	if !ok {
		return authn.Anonymous, nil
	}
	cfg := authn.AuthConfig{
		Username:      str(e, "username"),
		Password:      str(e, "password"),
		Auth:          str(e, "auth"),
		IdentityToken: str(e, "identitytoken"),
		RegistryToken: str(e, "registrytoken"),
	}
	if cfg == (authn.AuthConfig{}) {
		return authn.Anonymous, nil
	}
	if cfg.Auth != "" {
		// Decode here (rather than let go-containerregistry do it) so that a
		// corrupt entry is reported against config.json.
		dec, err := base64.StdEncoding.DecodeString(cfg.Auth)
		if err != nil {
			return nil, fmt.Errorf("%s: auths[%q].auth: %w", cf.path, key, err)
		}
		user, pass, ok := strings.Cut(string(dec), ":")
		if !ok {
			return nil, fmt.Errorf("%s: auths[%q].auth: not user:password", cf.path, key)
		}
		cfg.Auth, cfg.Username, cfg.Password = "", user, pass
	}
	return authn.FromConfig(cfg), nil
}

func helperProgram(h string) client.ProgramFunc {
	return client.NewShellProgramFunc("docker-credential-" + h)
}
