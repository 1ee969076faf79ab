// Package imagearchive reads and writes images as files: docker-archive
// (`docker save`/`docker load`, also podman's default), OCI image layout
// (a directory or its tar), and rootfs tarballs (`berth import`). It moves
// blobs between those formats and the content store; the image store then
// names and unpacks what Load or Import returns.
//
// CONTRACT (implementation pending: helper "imagearchive").
package imagearchive

import (
	"context"
	"errors"
	"io"

	"github.com/berth-dev/berth/internal/content"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

var errPending = errors.New("imagearchive: not implemented yet")

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
	return errPending
}

// Load reads a docker-archive or OCI layout tar (detected; gzip/zstd
// compressed tars accepted), stores every blob in cs verified against its
// digest, and returns the images it holds. Hostile archives (paths
// escaping, missing or mismatched blobs) are errors naming the entry; what
// was stored before the error stays unreferenced for GC.
func Load(ctx context.Context, r io.Reader, cs *content.Store) ([]Entry, error) {
	return nil, errPending
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
	return Entry{}, errPending
}
