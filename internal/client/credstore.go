package client

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
)

// Storing what POST /auth accepted, as the docker CLI stores it: the
// daemon has checked the credentials with the registry, so nothing here
// talks to the registry (a client of a remote daemon may not reach it at
// all). When the registry's token service gave an identity token (an
// OAuth refresh token, as Docker Hub does), that is kept instead of the
// password: config.json's auths[KEY] = {"auth": base64("USER:"),
// "identitytoken": TOKEN}, or, with a credential helper, the helper's
// entry with username "<token>" — the forms internal/registry reads back
// for X-Registry-Auth. The file format, its lock (.config.json.lock,
// flock) and the key spelling are internal/registry's; that package has
// no store-only entry point, so this is the second writer of the same
// format and must stay in step with it.

// tokenUsername is docker's username for an identity token kept in a
// credential helper.
const tokenUsername = "<token>"

// configDir is $DOCKER_CONFIG, else ~/.docker, as the registry client
// resolves it.
func configDir() string {
	if d := os.Getenv("DOCKER_CONFIG"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ".docker"
	}
	return filepath.Join(home, ".docker")
}

// authKey is config.json's key for server: Docker Hub's historical
// "https://index.docker.io/v1/" for it (however spelled), the host
// otherwise.
func authKey(server string) string {
	switch h := hostOfKey(server); h {
	case "", "docker.io", "index.docker.io", "registry-1.docker.io":
		return dockerHubServer
	default:
		return h
	}
}

// hostOfKey strips a server or key to its host[:port].
func hostOfKey(s string) string {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "https://"), "http://")
	h, _, _ := strings.Cut(s, "/")
	return h
}

// storeLogin keeps user's login to server: the identity token when there
// is one, else the password.
func storeLogin(server, user, password, identityToken string) error {
	dir := configDir()
	unlock, err := lockConfigDir(dir)
	if err != nil {
		return err
	}
	defer unlock()
	path := filepath.Join(dir, "config.json")
	fields := map[string]json.RawMessage{}
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		if err := json.Unmarshal(b, &fields); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read docker config: %w", err)
	}
	auths := map[string]map[string]json.RawMessage{}
	if raw, ok := fields["auths"]; ok {
		if err := json.Unmarshal(raw, &auths); err != nil {
			return fmt.Errorf("%s: auths: %w", path, err)
		}
	}
	key := authKey(server)
	entry := map[string]json.RawMessage{}
	if h := credentialHelper(fields, key); h != "" {
		creds := &credentials.Credentials{ServerURL: key, Username: user, Secret: password}
		if identityToken != "" {
			creds.Username, creds.Secret = tokenUsername, identityToken
		}
		if err := client.Store(client.NewShellProgramFunc("docker-credential-"+h), creds); err != nil {
			return fmt.Errorf("credential helper %s: %w", h, err)
		}
	} else {
		secret := password
		if identityToken != "" {
			secret = ""
			entry["identitytoken"], _ = json.Marshal(identityToken)
		}
		entry["auth"], _ = json.Marshal(base64.StdEncoding.EncodeToString([]byte(user + ":" + secret)))
	}
	// Entries for the same host under other spellings would shadow or
	// contradict the new one.
	for k := range auths {
		if hostOfKey(k) == hostOfKey(key) {
			delete(auths, k)
		}
	}
	auths[key] = entry
	if fields["auths"], err = json.Marshal(auths); err != nil {
		return err
	}
	data, err := json.MarshalIndent(fields, "", "\t")
	if err != nil {
		return err
	}
	target := path
	if t, err := filepath.EvalSymlinks(path); err == nil {
		target = t // docker writes through a symlinked config.json
	}
	if err := atomicfile.Write(target, append(data, '\n'), 0o600, atomicfile.Durable); err != nil {
		return fmt.Errorf("save docker config: %w", err)
	}
	return nil
}

// credentialHelper names the helper config.json sets for key:
// credHelpers[host] first, then credsStore, as docker picks it.
func credentialHelper(fields map[string]json.RawMessage, key string) string {
	var helpers map[string]string
	if raw, ok := fields["credHelpers"]; ok && json.Unmarshal(raw, &helpers) == nil {
		if h := helpers[hostOfKey(key)]; h != "" {
			return h
		}
		if h := helpers[key]; h != "" {
			return h
		}
	}
	var store string
	if raw, ok := fields["credsStore"]; ok && json.Unmarshal(raw, &store) == nil {
		return store
	}
	return ""
}
