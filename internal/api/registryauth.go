package api

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/registry"
	"github.com/moby/moby/api/types/common"
	registrytypes "github.com/moby/moby/api/types/registry"
)

// Registry credentials travel with each request, as with dockerd: the
// client keeps them (config.json, credential helpers) and sends them in
// X-Registry-Auth with a pull or push and in X-Registry-Config with a
// build; berthd keeps none. POST /auth only checks them.

// registryConfigHeader carries a build's credentials: a map from registry
// (as config.json keys it) to AuthConfig.
const registryConfigHeader = "X-Registry-Config"

// decodeBase64URL decodes base64url with or without padding: dockerd's
// decoder expects it padded, and some clients strip it.
func decodeBase64URL(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

// requestAuth is the X-Registry-Auth of a pull or push, keyed by the
// registry of ref. As dockerd, a missing or undecodable header is no
// credentials rather than an error (the operation then runs with the
// engine's own, or anonymously, and the registry says what it refuses).
func requestAuth(r *http.Request, ref string) registry.Credentials {
	ac, ok := decodeAuthConfig(r.Header.Get(registrytypes.AuthHeader))
	if !ok {
		return nil
	}
	creds, err := registry.CredentialsFor(ref, ac)
	if err != nil {
		return nil
	}
	return creds
}

func decodeAuthConfig(h string) (registry.AuthConfig, bool) {
	if h == "" {
		return registry.AuthConfig{}, false
	}
	b, err := decodeBase64URL(h)
	if err != nil {
		return registry.AuthConfig{}, false
	}
	var ac registrytypes.AuthConfig
	if err := json.Unmarshal(b, &ac); err != nil {
		return registry.AuthConfig{}, false
	}
	return authConfig(ac), true
}

// buildAuth is the X-Registry-Config of a build, for the pulls of its
// base images; undecodable is none, as with dockerd.
func buildAuth(r *http.Request) registry.Credentials {
	h := r.Header.Get(registryConfigHeader)
	if h == "" {
		return nil
	}
	b, err := decodeBase64URL(h)
	if err != nil {
		return nil
	}
	var m map[string]registrytypes.AuthConfig
	if err := json.Unmarshal(b, &m); err != nil {
		return nil
	}
	creds := registry.Credentials{}
	for k, ac := range m {
		if k == "" {
			k = ac.ServerAddress
		}
		creds[k] = authConfig(ac)
	}
	return creds
}

func authConfig(ac registrytypes.AuthConfig) registry.AuthConfig {
	return registry.AuthConfig{
		Username: ac.Username, Password: ac.Password, Auth: ac.Auth,
		IdentityToken: ac.IdentityToken, RegistryToken: ac.RegistryToken,
	}
}

// auth serves POST /auth as dockerd does: check the credentials with the
// registry and store them nowhere. The answer is {"Status": "Login
// Succeeded"} with the registry's identity token when it gives one;
// refused credentials are a 401 with the registry's verdict.
func (s *Server) auth(w http.ResponseWriter, r *http.Request) error {
	var ac registrytypes.AuthConfig
	if err := decodeBody(r, &ac); err != nil {
		return err
	}
	token, err := s.e.VerifyLogin(r.Context(), ac.ServerAddress, authConfig(ac))
	if errors.Is(err, errdefs.ErrPermission) {
		writeJSON(w, http.StatusUnauthorized, common.ErrorResponse{Message: Message(err)})
		return nil
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, registrytypes.AuthResponse{Status: "Login Succeeded", IdentityToken: token})
	return nil
}
