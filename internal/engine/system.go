package engine

import (
	"context"

	"github.com/opencontainers/go-digest"
)

// DiskUsage measures images and containers.
func (e *Engine) DiskUsage(ctx context.Context) (DiskUsage, error) {
	var du DiskUsage
	cs, err := e.listContainers()
	if err != nil {
		return du, err
	}
	du.Containers = cs
	perImage := map[string]int64{}
	for _, c := range cs {
		perImage[c.ImageID]++
		if n, err := e.snaps.Usage(ctx, c.Snapshot); err == nil {
			du.ContainersSize += n
		}
	}
	du.Images, err = e.images.Usage(ctx, func(id digest.Digest) int64 { return perImage[id.String()] })
	return du, err
}

// Login checks credentials with the registry and stores them like `docker login`.
func (e *Engine) Login(ctx context.Context, server, user, password string) error {
	return e.registry.Login(ctx, server, user, password)
}

// Logout removes stored credentials for server.
func (e *Engine) Logout(server string) error { return e.registry.Logout(server) }
