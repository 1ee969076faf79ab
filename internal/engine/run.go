package engine

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/moby/moby/api/types/events"
)

// Create makes a container from an image already in the store: its record
// and its writable snapshot. Nothing runs yet.
func (e *Engine) Create(ctx context.Context, opts CreateOptions) (_ *Container, retErr error) {
	Mark("create")
	warmProcessStart()
	img, err := e.images.Get(ctx, opts.Config.Image)
	if err != nil {
		return nil, err
	}
	icfg, err := e.images.Config(ctx, img)
	if err != nil {
		return nil, err
	}
	c := &Container{
		ID:         newID(),
		Name:       strings.TrimPrefix(opts.Name, "/"),
		Created:    time.Now().UTC(),
		ImageRef:   opts.Config.Image,
		ImageID:    img.ID.String(),
		Config:     opts.Config,
		HostConfig: opts.HostConfig,
		Driver:     e.snaps.Driver(),
	}
	c.Snapshot = c.ID
	if c.Name == "" {
		c.Name = randomName(c.ID)
	} else if !validName(c.Name) {
		return nil, fmt.Errorf("invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed: %w", c.Name, errdefs.ErrInvalidArgument)
	}
	// The image's config supplies what the request leaves out, as in Docker:
	// env merged (request wins), entrypoint and cmd, workdir, user.
	cfg := &c.Config
	cfg.Env = mergeEnv(icfg.Config.Env, cfg.Env)
	if cfg.Entrypoint == nil {
		cfg.Entrypoint = icfg.Config.Entrypoint
		if len(cfg.Cmd) == 0 {
			cfg.Cmd = icfg.Config.Cmd
		}
	} else if len(cfg.Entrypoint) == 1 && cfg.Entrypoint[0] == "" {
		// --entrypoint "" clears the image's entrypoint.
		cfg.Entrypoint = nil
	}
	if cfg.WorkingDir == "" {
		cfg.WorkingDir = icfg.Config.WorkingDir
	}
	if cfg.User == "" {
		cfg.User = icfg.Config.User
	}
	if cfg.Hostname == "" {
		cfg.Hostname = c.ID[:12]
	}
	if cfg.Labels == nil {
		cfg.Labels = map[string]string{}
	}
	for k, v := range icfg.Config.Labels {
		if _, ok := cfg.Labels[k]; !ok {
			cfg.Labels[k] = v
		}
	}
	// The image's VOLUMEs become anonymous volumes, as in Docker.
	for p := range icfg.Config.Volumes {
		if cfg.Volumes == nil {
			cfg.Volumes = map[string]struct{}{}
		}
		cfg.Volumes[p] = struct{}{}
	}
	if len(cfg.Entrypoint)+len(cfg.Cmd) == 0 {
		return nil, fmt.Errorf("no command specified: %w", errdefs.ErrInvalidArgument)
	}
	Mark("create: image config read")
	if _, err := e.snaps.Prepare(ctx, c.Snapshot, img.ChainID.String(), map[string]string{"berth.container": c.ID}); err != nil {
		return nil, fmt.Errorf("create %s: %w", c.Name, err)
	}
	defer func() {
		if retErr != nil {
			_ = e.snaps.Remove(context.WithoutCancel(ctx), c.Snapshot)
		}
	}()
	Mark("create: snapshot prepared")
	// Flags are validated (exit 125 at create, as in Docker) and volumes
	// created before the record exists.
	if err := e.prepareCreate(ctx, c); err != nil {
		return nil, err
	}
	Mark("create: validated")
	generated := opts.Name == ""
	for i := 2; ; i++ {
		err := e.addContainer(c)
		if err == nil {
			Mark("create: record written")
			e.emit(events.ContainerEventType, events.ActionCreate, c, nil)
			return c, nil
		}
		if !generated || !errdefs.IsConflict(err) || i > 100 {
			return nil, err
		}
		c.Name = randomName(c.ID) + "_" + strconv.Itoa(i)
	}
}

// mergeEnv overlays over on base by variable name, keeping base's order.
func mergeEnv(base, over []string) []string {
	out := append([]string{}, base...)
	for _, kv := range over {
		k, _, _ := strings.Cut(kv, "=")
		replaced := false
		for i, b := range out {
			if bk, _, _ := strings.Cut(b, "="); bk == k {
				out[i], replaced = kv, true
			}
		}
		if !replaced {
			out = append(out, kv)
		}
	}
	return out
}
