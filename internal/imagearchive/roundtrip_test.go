package imagearchive

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"testing"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/content"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// fixtureEntries imports three images: one with two names, one with a
// name whose familiar form differs (registry host), one unnamed.
func fixtureEntries(t *testing.T, cs *content.Store) []Entry {
	a := importRootfs(t, cs, "a", `CMD ["/bin/hello"]`)
	a.Names = []string{"docker.io/library/busybox:latest", "docker.io/library/busybox:1.36"}
	b := importRootfs(t, cs, "b")
	b.Names = []string{"localhost:5000/team/app:v2"}
	c := importRootfs(t, cs, "c")
	return []Entry{a, b, c}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	for _, c := range []struct {
		name   string
		format Format
		comp   archive.Compression
	}{
		{"docker", DockerArchive, archive.Uncompressed},
		{"docker gzip", DockerArchive, archive.Gzip},
		{"oci", OCIArchive, archive.Uncompressed},
		{"oci zstd", OCIArchive, archive.Zstd},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			src := newStore(t)
			entries := fixtureEntries(t, src)
			var buf bytes.Buffer
			zw, err := archive.Compress(&buf, c.comp)
			if err != nil {
				t.Fatal(err)
			}
			if err := Save(ctx, zw, src, entries, c.format); err != nil {
				t.Fatal(err)
			}
			zw.Close()

			dst := newStore(t)
			loaded, err := Load(ctx, bytes.NewReader(buf.Bytes()), dst)
			if err != nil {
				t.Fatal(err)
			}
			if len(loaded) != len(entries) {
				t.Fatalf("loaded %d images, saved %d: %+v", len(loaded), len(entries), loaded)
			}
			for i, want := range entries {
				got := loaded[i]
				if !reflect.DeepEqual(got.Names, want.Names) {
					t.Errorf("image %d: names %q, want %q", i, got.Names, want.Names)
				}
				wm, wcfg := imageOf(t, src, want)
				gm, gcfg := imageOf(t, dst, got)
				if gm.Config.Digest != wm.Config.Digest {
					t.Errorf("image %d: config %s, want %s", i, gm.Config.Digest, wm.Config.Digest)
				}
				if !reflect.DeepEqual(gcfg.RootFS, wcfg.RootFS) {
					t.Errorf("image %d: rootfs %+v, want %+v", i, gcfg.RootFS, wcfg.RootFS)
				}
				if got.Manifest.Platform == nil || got.Manifest.Platform.Architecture != wcfg.Architecture {
					t.Errorf("image %d: platform %+v", i, got.Manifest.Platform)
				}
				switch c.format {
				case OCIArchive:
					// Blobs travel as stored: every digest is kept.
					if got.Manifest.Digest != want.Manifest.Digest || !reflect.DeepEqual(gm, wm) {
						t.Errorf("image %d: manifest %s, want %s", i, got.Manifest.Digest, want.Manifest.Digest)
					}
				case DockerArchive:
					// Layers travel uncompressed: the manifest is rebuilt
					// over blobs whose digests are the diff_ids.
					if got.Manifest.MediaType != mediaTypeDockerManifest {
						t.Errorf("image %d: manifest media type %q", i, got.Manifest.MediaType)
					}
					for j, l := range gm.Layers {
						if l.Digest != wcfg.RootFS.DiffIDs[j] || l.MediaType != mediaTypeDockerLayer {
							t.Errorf("image %d layer %d: %+v, want uncompressed %s", i, j, l, wcfg.RootFS.DiffIDs[j])
						}
					}
				}
			}
		})
	}
}

// TestSaveDockerLayout pins what docker and podman read: familiar RepoTags,
// paths under blobs/sha256, uncompressed layers, and the OCI index naming
// the same image.
func TestSaveDockerLayout(t *testing.T) {
	cs := newStore(t)
	entries := fixtureEntries(t, cs)
	var buf bytes.Buffer
	if err := Save(context.Background(), &buf, cs, entries, DockerArchive); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	tr := tar.NewReader(&buf)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, dup := files[hdr.Name]; dup {
			t.Errorf("member %s written twice", hdr.Name)
		}
		b, _ := io.ReadAll(tr)
		files[hdr.Name] = b
	}
	var manifest []dockerManifestEntry
	if err := json.Unmarshal(files["manifest.json"], &manifest); err != nil {
		t.Fatal(err)
	}
	wantTags := [][]string{{"busybox:latest", "busybox:1.36"}, {"localhost:5000/team/app:v2"}, {}}
	for i, me := range manifest {
		if !reflect.DeepEqual(me.RepoTags, wantTags[i]) {
			t.Errorf("image %d: RepoTags %q, want %q", i, me.RepoTags, wantTags[i])
		}
		_, cfg := imageOf(t, cs, entries[i])
		for j, l := range me.Layers {
			if l != blobPath(cfg.RootFS.DiffIDs[j]) {
				t.Errorf("image %d layer %d at %q, want its diff_id path", i, j, l)
			}
			if _, c, _ := archive.Decompress(bytes.NewReader(files[l])); c != archive.Uncompressed {
				t.Errorf("layer %s is compressed (%v)", l, c)
			}
		}
	}
	var repos map[string]map[string]string
	if err := json.Unmarshal(files["repositories"], &repos); err != nil {
		t.Fatal(err)
	}
	if repos["busybox"]["1.36"] == "" || repos["localhost:5000/team/app"]["v2"] == "" {
		t.Errorf("repositories %v", repos)
	}
	var idx ocispec.Index
	if err := json.Unmarshal(files["index.json"], &idx); err != nil {
		t.Fatal(err)
	}
	if len(idx.Manifests) != 4 || idx.Manifests[0].Annotations[annotationContainerdName] != "docker.io/library/busybox:latest" ||
		idx.Manifests[0].Annotations[annotationRefName] != "latest" {
		t.Errorf("index.json %s", files["index.json"])
	}
	if files["oci-layout"] == nil {
		t.Error("no oci-layout")
	}
}
