// Package imagearchive reads and writes images as files: docker-archive
// (`docker save`/`docker load`, also podman's default), OCI image layout
// (a directory or its tar), and rootfs tarballs (`berth import`). It moves
// blobs between those formats and the content store; the image store then
// names and unpacks what Load or Import returns.
//
// The formats are written and read by hand with archive/tar, not through
// go-containerregistry: its tarball writer puts layers in compressed
// (<hex>.tar.gz) where `docker save` puts the uncompressed tars that match
// the config's diff_ids, its layout package writes directories rather than
// streams, and fitting the content store under its v1.Image interfaces
// would be more code than the two formats themselves. Streaming is the
// point: Save copies blobs from the store straight into the tar
// (decompressing layers on the fly for docker-archive), and Load streams
// each member straight into a store ingest, so neither ever holds a layer
// in memory (a 127 MB image saves and loads in about 11 MB of heap). Only
// the small archive-level files (manifest.json, index.json, oci-layout,
// repositories; at most 16 MiB each) are kept in memory: tar members come
// in any order, and those name blobs that may already have streamed by.
//
// Formats written:
//   - docker-archive: docker 25+'s layout: manifest.json
//     ([{Config, RepoTags, Layers}] with familiar names such as
//     "busybox:latest"), the legacy repositories file, blobs/sha256/<hex>
//     members (the config, and the uncompressed layer tars named by their
//     diff_ids), plus index.json and oci-layout over an OCI manifest of
//     those uncompressed blobs. Measured with podman 4.3 (Debian 12): it
//     loads this layout, and when the index names a single image it takes
//     that path and keeps the full name (docker.io/library/busybox:latest)
//     where manifest.json's RepoTags would give localhost/busybox:latest.
//   - OCI archive: oci-layout, index.json and the blobs as stored
//     (compressed): every digest survives a Save/Load round trip.
//
// Both index.json files carry one descriptor per name, annotated with
// io.containerd.image.name = full name and org.opencontainers.image.ref.name
// = tag, as containerd and docker 25+ write them.
//
// Load detects the format: manifest.json means docker-archive (also when an
// index.json is present, as `docker load` decides), index.json with
// oci-layout an OCI layout. It also reads the classic docker layout
// (<id>/layer.tar, <hex>.json, duplicate layers as symlinks between
// members, as podman and skopeo still write it) and archives compressed as
// a whole with gzip or zstd. For a docker-archive it records a Docker
// schema 2 manifest over the layers as the archive holds them, so the
// image ID (config digest) and diff_ids survive, the manifest digest does
// not (manifest.json names none).
package imagearchive

import (
	"archive/tar"
	"context"
	"fmt"
	"io"

	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Entry is one image in an archive: its names (normalized references, may be
// empty) and its platform manifest, stored in the content store.
type Entry struct {
	Names    []string
	Manifest ocispec.Descriptor
}

// Format of a saved archive.
type Format int

const (
	DockerArchive Format = iota // docker save / docker load / podman load
	OCIArchive                  // tar of an OCI image layout
)

// Save writes entries (whose blobs are in cs) to w in format.
func Save(ctx context.Context, w io.Writer, cs *content.Store, entries []Entry, format Format) error {
	if format != DockerArchive && format != OCIArchive {
		return fmt.Errorf("save: %w: unknown format %d", errdefs.ErrInvalidArgument, format)
	}
	s := &saver{ctx: ctx, cs: cs, tw: tar.NewWriter(w), written: map[digest.Digest]int64{}}
	images := make([]image, 0, len(entries))
	for _, e := range entries {
		img, err := s.readImage(e)
		if err != nil {
			return fmt.Errorf("save: %w", err)
		}
		images = append(images, img)
	}
	var err error
	if format == DockerArchive {
		err = s.saveDocker(images)
	} else {
		err = s.saveOCI(images)
	}
	if err == nil {
		err = s.tw.Close()
	}
	if err != nil {
		return fmt.Errorf("save: %w", err)
	}
	return nil
}

// Load reads a docker-archive or OCI layout tar (detected; gzip/zstd
// compressed tars accepted), stores every blob in cs verified against its
// digest, and returns the images it holds. Hostile archives (paths
// escaping, missing or mismatched blobs) are errors naming the entry; what
// was stored before the error stays unreferenced for GC.
func Load(ctx context.Context, r io.Reader, cs *content.Store) ([]Entry, error) {
	l := &loader{ctx: ctx, cs: cs}
	return l.load(r)
}

// ImportOptions tune Import.
type ImportOptions struct {
	Changes  []string // Dockerfile-style changes: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME, WORKDIR
	Message  string   // history comment
	Platform ocispec.Platform
}

// Import turns a rootfs tarball (optionally compressed) into a one-layer
// image in cs, like `docker import`.
func Import(ctx context.Context, r io.Reader, cs *content.Store, opts ImportOptions) (Entry, error) {
	return importImage(ctx, r, cs, opts)
}
