package client

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	berthregistry "github.com/berth-dev/berth/internal/registry"
	"github.com/moby/moby/api/types/registry"
)

// Registry credentials travel with the requests that need them, as the
// docker CLI sends them: berthd keeps none. They come from this side's
// config.json ($DOCKER_CONFIG, else ~/.docker) and the credential helpers
// it names, read by the same code as the in-process engine's.

// dockerHubServer is Docker Hub's name in config.json and in the
// serveraddress the docker CLI sends.
const dockerHubServer = "https://index.docker.io/v1/"

// authHeader is X-Registry-Auth for a pull or push of ref: the
// credentials for its registry as a base64url JSON AuthConfig. With none
// stored it carries the server address alone, as docker's does.
func authHeader(ctx context.Context, ref string) (http.Header, error) {
	name, err := berthregistry.Normalize(ref)
	if err != nil {
		return nil, err
	}
	host, _, _ := strings.Cut(name, "/")
	ac, err := berthregistry.New(berthregistry.Options{}).AuthConfig(ctx, host)
	if err != nil {
		return nil, fmt.Errorf("registry credentials for %s: %w", host, err)
	}
	server := host
	if host == "docker.io" {
		server = dockerHubServer // as the docker CLI names Docker Hub
	}
	v, err := encodeAuth(authConfig(server, ac))
	if err != nil {
		return nil, err
	}
	return http.Header{registry.AuthHeader: {v}}, nil
}

// configHeader is X-Registry-Config for a build: every registry's
// credentials, since any FROM line may name any registry.
func configHeader(ctx context.Context) (http.Header, error) {
	all, err := berthregistry.New(berthregistry.Options{}).AllCredentials(ctx)
	if err != nil {
		return nil, fmt.Errorf("registry credentials: %w", err)
	}
	m := map[string]registry.AuthConfig{}
	for k, ac := range all {
		m[k] = authConfig(k, ac)
	}
	v, err := encodeAuth(m)
	if err != nil {
		return nil, err
	}
	return http.Header{"X-Registry-Config": {v}}, nil
}

func authConfig(server string, ac berthregistry.AuthConfig) registry.AuthConfig {
	return registry.AuthConfig{
		Username: ac.Username, Password: ac.Password, Auth: ac.Auth, ServerAddress: server,
		IdentityToken: ac.IdentityToken, RegistryToken: ac.RegistryToken,
	}
}

// encodeAuth is docker's encoding of both headers: base64url of the JSON.
func encodeAuth(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("encode registry credentials: %w", err)
	}
	return base64.URLEncoding.EncodeToString(b), nil
}
