// Package imagearchive reads and writes images as files: docker-archive
// (`docker save`/`docker load`, also podman's default), OCI image layout
// (a directory or its tar), and rootfs tarballs (`berth import`). It moves
// blobs between those formats and the content store; the image store then
// names and unpacks what Load or Import returns.
//
// The formats are written and read by hand with archive/tar rather than
// through go-containerregistry's tarball and layout packages: those model an
// image as lazily computed layers and, to write a docker-archive, compute
// uncompressed sizes and digests their own way, while here every blob is
// already a verified file in the content store. Streaming is the point:
// Save copies blobs from the store straight into the tar (decompressing
// layers on the fly for docker-archive), and Load streams each member
// straight into a store ingest, so neither ever holds a layer in memory.
// Only the small archive-level files (manifest.json, index.json, oci-layout,
// repositories; bounded at 16 MiB) are kept in memory, because tar members
// come in any order and those name the blobs streamed before them.
//
// Formats written:
//   - docker-archive: docker 25+'s layout, which docker and podman (4.3,
//     measured) both load: manifest.json ([{Config, RepoTags, Layers}] with
//     familiar names such as "busybox:latest"), the legacy repositories
//     file, blobs/sha256/<hex> members (config and uncompressed layer tars
//     named by their diff_ids), and an OCI index.json and oci-layout over a
//     manifest of those uncompressed blobs.
//   - OCI archive: oci-layout, index.json and blobs as stored, compressed.
//
// Both index.json files carry one descriptor per name, annotated with
// io.containerd.image.name = full name and org.opencontainers.image.ref.name
// = tag, as containerd and docker 25+ write them.
//
// Load accepts both, also the classic docker layout (<id>/layer.tar,
// <hex>.json, with symlinks between members), and gzip or zstd compression
// of the whole archive.
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
