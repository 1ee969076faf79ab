package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/imagearchive"
	"github.com/moby/moby/api/types/events"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Commit makes an image from a container: the parent image plus one layer
// holding the container's changes (archive.Diff of its upper directory).
// The blobs go into the content store and run through the same unpack
// pipeline as a pull, so the new image is a normal image record.
func (e *Engine) Commit(ctx context.Context, ref string, opts CommitOptions) (string, error) {
	c, err := e.lookupContainer(ref)
	if err != nil {
		return "", err
	}
	// A bad change is refused before any work, not after the layer.
	if err := imagearchive.ApplyChanges(&ocispec.ImageConfig{}, opts.Changes); err != nil {
		return "", fmt.Errorf("commit %s: %w", c.Name, err)
	}
	parent, err := e.images.Get(ctx, c.ImageID)
	if err != nil {
		return "", fmt.Errorf("commit %s: parent image: %w", c.Name, err)
	}
	pm, err := e.images.Manifest(ctx, parent)
	if err != nil {
		return "", err
	}
	pcfg, err := e.images.Config(ctx, parent)
	if err != nil {
		return "", err
	}
	if opts.Pause && e.state(c).Status == "running" && !c.Paused {
		if err := e.ctrRuntime(ctx, c, "pause", c.ID); err == nil {
			defer func() { _ = e.ctrRuntime(context.WithoutCancel(ctx), c, "resume", c.ID) }()
		}
	}
	upper, err := e.snaps.UpperDir(ctx, c.Snapshot)
	if err != nil {
		return "", fmt.Errorf("commit %s: %w", c.Name, err)
	}
	lowers, err := e.snaps.LowerDirs(ctx, c.Snapshot)
	if err != nil {
		return "", fmt.Errorf("commit %s: %w", c.Name, err)
	}
	// The layer: the diff tar, hashed uncompressed (DiffID) and compressed
	// (blob digest) in one pass into a temporary file.
	tmp, err := os.CreateTemp(e.opts.Root, ".commit-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	blobDigester := digest.SHA256.Digester()
	counter := &countWriter{w: io.MultiWriter(tmp, blobDigester.Hash())}
	zw, err := archive.Compress(counter, archive.Gzip)
	if err != nil {
		return "", err
	}
	diffDigester := digest.SHA256.Digester()
	if err := archive.Diff(ctx, io.MultiWriter(zw, diffDigester.Hash()), upper, lowers); err != nil {
		return "", fmt.Errorf("commit %s: %w", c.Name, err)
	}
	if err := zw.Close(); err != nil {
		return "", err
	}
	layer := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: blobDigester.Digest(), Size: counter.n}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	if err := e.content.WriteBlob(ctx, layer, tmp); err != nil {
		return "", fmt.Errorf("commit %s: %w", c.Name, err)
	}

	now := time.Now().UTC()
	cfg := pcfg
	cfg.Created = &now
	cfg.Author = opts.Author
	cfg.RootFS.DiffIDs = append(append([]digest.Digest{}, pcfg.RootFS.DiffIDs...), diffDigester.Digest())
	cfg.History = append(append([]ocispec.History{}, pcfg.History...), ocispec.History{
		Created: &now, Author: opts.Author, Comment: opts.Comment,
		CreatedBy: strings.Join(append(append([]string{}, c.Config.Entrypoint...), c.Config.Cmd...), " "),
	})
	run := opts.Config
	if run == nil {
		run = &c.Config
	}
	cfg.Config.Env, cfg.Config.Cmd, cfg.Config.Entrypoint = run.Env, run.Cmd, run.Entrypoint
	cfg.Config.WorkingDir, cfg.Config.User, cfg.Config.Labels = run.WorkingDir, run.User, run.Labels
	if run.StopSignal != "" {
		cfg.Config.StopSignal = run.StopSignal
	}
	// Ports and volumes the container added (--expose, -p, -v /path) stay
	// with the image, beside the parent's, as dockerd commits them. The
	// maps are copied first: they are the parent config's.
	cfg.Config.ExposedPorts = maps.Clone(cfg.Config.ExposedPorts)
	cfg.Config.Volumes = maps.Clone(cfg.Config.Volumes)
	for p := range run.ExposedPorts {
		if cfg.Config.ExposedPorts == nil {
			cfg.Config.ExposedPorts = map[string]struct{}{}
		}
		cfg.Config.ExposedPorts[p.String()] = struct{}{}
	}
	for v := range run.Volumes {
		if cfg.Config.Volumes == nil {
			cfg.Config.Volumes = map[string]struct{}{}
		}
		cfg.Config.Volumes[v] = struct{}{}
	}
	if err := imagearchive.ApplyChanges(&cfg.Config, opts.Changes); err != nil {
		return "", fmt.Errorf("commit %s: %w", c.Name, err)
	}
	cfgDesc, err := e.putJSON(ctx, ocispec.MediaTypeImageConfig, cfg)
	if err != nil {
		return "", err
	}
	m := ocispec.Manifest{
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    cfgDesc,
		Layers:    append(append([]ocispec.Descriptor{}, pm.Layers...), layer),
	}
	m.SchemaVersion = 2
	mDesc, err := e.putJSON(ctx, ocispec.MediaTypeImageManifest, m)
	if err != nil {
		return "", err
	}
	img, err := e.unpackLocal(ctx, mDesc, nil)
	if err != nil {
		return "", fmt.Errorf("commit %s: %w", c.Name, err)
	}
	if opts.Reference != "" {
		name, err := image.NormalizeName(opts.Reference)
		if err != nil {
			return "", err
		}
		if err := e.images.Tag(ctx, name, img); err != nil {
			return "", err
		}
	}
	e.emit(events.ContainerEventType, events.ActionCommit, c, map[string]string{"imageID": img.ID.String()})
	return img.ID.String(), nil
}

func (e *Engine) putJSON(ctx context.Context, mediaType string, v any) (ocispec.Descriptor, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	d := ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(b), Size: int64(len(b))}
	return d, e.content.WriteBlob(ctx, d, bytes.NewReader(b))
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
