package imagearchive

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"testing"

	"github.com/berth-dev/berth/internal/content"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func newStore(t *testing.T) *content.Store {
	t.Helper()
	cs, err := content.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// member is one entry of a tar built by tarball.
type member struct {
	name string
	typ  byte // tar.TypeReg when zero
	body []byte
	link string
}

func tarball(t *testing.T, members ...member) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, m := range members {
		hdr := &tar.Header{Name: m.name, Typeflag: m.typ, Mode: 0o644, Size: int64(len(m.body)), Linkname: m.link}
		if hdr.Typeflag == 0 {
			hdr.Typeflag = tar.TypeReg
		}
		if hdr.Typeflag != tar.TypeReg {
			hdr.Size = 0
		}
		if hdr.Typeflag == tar.TypeDir {
			hdr.Mode = 0o755
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(m.body); err != nil && hdr.Size > 0 {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// rootfs returns a small root filesystem tar whose content depends on seed.
func rootfs(t *testing.T, seed string) []byte {
	return tarball(t,
		member{name: "bin/", typ: tar.TypeDir},
		member{name: "bin/hello", body: []byte("#!/bin/sh\necho " + seed + "\n")},
		member{name: "etc/", typ: tar.TypeDir},
		member{name: "etc/os-release", body: bytes.Repeat([]byte(seed), 1000)},
		member{name: "bin/sh", typ: tar.TypeSymlink, link: "hello"},
	)
}

// importRootfs imports rootfs(seed) into cs.
func importRootfs(t *testing.T, cs *content.Store, seed string, changes ...string) Entry {
	t.Helper()
	e, err := Import(context.Background(), bytes.NewReader(rootfs(t, seed)), cs, ImportOptions{Changes: changes})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func readJSON(t *testing.T, cs *content.Store, d digest.Digest, v any) {
	t.Helper()
	b, err := cs.ReadAll(context.Background(), d, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

// imageOf reads an entry's manifest and config.
func imageOf(t *testing.T, cs *content.Store, e Entry) (ocispec.Manifest, ocispec.Image) {
	t.Helper()
	var m ocispec.Manifest
	readJSON(t, cs, e.Manifest.Digest, &m)
	var cfg ocispec.Image
	readJSON(t, cs, m.Config.Digest, &cfg)
	return m, cfg
}

// blobBytes reads a whole blob.
func blobBytes(t *testing.T, cs *content.Store, d digest.Digest) []byte {
	t.Helper()
	f, err := cs.Open(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
