package imagearchive

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// classic builds the members of a classic docker-archive (<id>/layer.tar,
// <hex>.json) holding one image with the given layer contents.
func classic(t *testing.T, layers ...[]byte) (cfg []byte, members []member) {
	t.Helper()
	var img ocispec.Image
	img.OS, img.Architecture = "linux", "amd64"
	img.RootFS.Type = "layers"
	var paths []string
	for i, l := range layers {
		img.RootFS.DiffIDs = append(img.RootFS.DiffIDs, digest.FromBytes(l))
		id := strings.Repeat(string(rune('a'+i)), 64)
		members = append(members, member{name: id + "/", typ: tar.TypeDir}, member{name: id + "/layer.tar", body: l},
			member{name: id + "/VERSION", body: []byte("1.0")}, member{name: id + "/json", body: []byte("{}")})
		paths = append(paths, id+"/layer.tar")
	}
	cfg, _ = json.Marshal(img)
	cfgName := digest.FromBytes(cfg).Encoded() + ".json"
	manifest, _ := json.Marshal([]dockerManifestEntry{{Config: cfgName, RepoTags: []string{"classic:1"}, Layers: paths}})
	// manifest.json first: Load must not depend on member order.
	return cfg, append([]member{{name: "manifest.json", body: manifest}, {name: cfgName, body: cfg}}, members...)
}

func TestLoadClassicLayout(t *testing.T) {
	l1, l2 := rootfs(t, "one"), rootfs(t, "two")
	_, members := classic(t, l1, l2, l1)
	// The third layer repeats the first as a symlink, as docker wrote it.
	for i, m := range members {
		if m.name == strings.Repeat("c", 64)+"/layer.tar" {
			members[i] = member{name: m.name, typ: tar.TypeSymlink, link: "../" + strings.Repeat("a", 64) + "/layer.tar"}
		}
	}
	cs := newStore(t)
	entries, err := Load(context.Background(), bytes.NewReader(tarball(t, members...)), cs)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || len(entries[0].Names) != 1 || entries[0].Names[0] != "docker.io/library/classic:1" {
		t.Fatalf("entries %+v", entries)
	}
	m, _ := imageOf(t, cs, entries[0])
	want := []digest.Digest{digest.FromBytes(l1), digest.FromBytes(l2), digest.FromBytes(l1)}
	for i, l := range m.Layers {
		if l.Digest != want[i] || l.MediaType != mediaTypeDockerLayer {
			t.Errorf("layer %d: %+v, want %s", i, l, want[i])
		}
	}
}

// TestLoadCompressedDockerLayer: `docker load` accepts compressed layer
// tars; the blob is kept compressed and checked against the diff_id.
func TestLoadCompressedDockerLayer(t *testing.T) {
	raw := rootfs(t, "gz")
	var gz bytes.Buffer
	zw, _ := archive.Compress(&gz, archive.Gzip)
	zw.Write(raw)
	zw.Close()
	_, members := classic(t, raw)
	layerName := strings.Repeat("a", 64) + "/layer.tar"
	for i := range members {
		if members[i].name == layerName {
			members[i].body = gz.Bytes()
		}
	}
	cs := newStore(t)
	entries, err := Load(context.Background(), bytes.NewReader(tarball(t, members...)), cs)
	if err != nil {
		t.Fatal(err)
	}
	m, cfg := imageOf(t, cs, entries[0])
	if m.Layers[0].Digest != digest.FromBytes(gz.Bytes()) || m.Layers[0].MediaType != mediaTypeDockerLayerGzip || cfg.RootFS.DiffIDs[0] != digest.FromBytes(raw) {
		t.Errorf("layer %+v, diff_ids %v", m.Layers[0], cfg.RootFS.DiffIDs)
	}
}

func TestLoadRejectsHostileArchives(t *testing.T) {
	layer := rootfs(t, "l")
	cfg, good := classic(t, layer)
	cfgName := digest.FromBytes(cfg).Encoded() + ".json"
	layerName := strings.Repeat("a", 64) + "/layer.tar"
	without := func(name string) []member {
		var out []member
		for _, m := range good {
			if m.name != name {
				out = append(out, m)
			}
		}
		return out
	}
	replace := func(name string, m member) []member { return append(without(name), m) }
	manifestOf := func(cfgPath string, layers ...string) member {
		b, _ := json.Marshal([]dockerManifestEntry{{Config: cfgPath, RepoTags: []string{"x:1"}, Layers: layers}})
		return member{name: "manifest.json", body: b}
	}
	otherLayer := rootfs(t, "other")
	blob := func(b []byte) string { return "blobs/sha256/" + digest.FromBytes(b).Encoded() }
	ociManifest, _ := json.Marshal(ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(cfg), Size: int64(len(cfg))},
		Layers: []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromBytes(layer), Size: int64(len(layer))}}})
	ociIndex, _ := json.Marshal(ocispec.Index{Manifests: []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageManifest,
		Digest: digest.FromBytes(ociManifest), Size: int64(len(ociManifest))}}})
	layout := member{name: "oci-layout", body: []byte(`{"imageLayoutVersion":"1.0.0"}`)}

	for _, c := range []struct {
		name    string
		members []member
		naming  string // the error must name this member
	}{
		{"dot-dot member", append(good, member{name: "x/../../etc/passwd", body: []byte("root")}), "x/../../etc/passwd"},
		{"absolute member", append(good, member{name: "/etc/passwd", body: []byte("root")}), "/etc/passwd"},
		{"symlink to absolute path", replace(layerName, member{name: layerName, typ: tar.TypeSymlink, link: "/etc/shadow"}), layerName},
		{"symlink escaping", replace(layerName, member{name: layerName, typ: tar.TypeSymlink, link: "../../../etc/shadow"}), layerName},
		{"hardlink escaping", replace(layerName, member{name: layerName, typ: tar.TypeLink, link: "../x"}), layerName},
		{"symlink loop", replace(layerName, member{name: layerName, typ: tar.TypeSymlink, link: "layer.tar"}), layerName},
		{"device member", append(good, member{name: "dev", typ: tar.TypeChar}), "dev"},
		{"missing layer", without(layerName), layerName},
		{"missing config", without(cfgName), cfgName},
		{"manifest path escaping", replace("manifest.json", manifestOf("../"+cfgName, layerName)), "../" + cfgName},
		{"config digest mismatch", replace(cfgName, member{name: cfgName, body: append(cfg, ' ')}), cfgName},
		{"diff_id mismatch", replace(layerName, member{name: layerName, body: otherLayer}), layerName},
		{"layer count mismatch", replace("manifest.json", manifestOf(cfgName, layerName, layerName)), "diff_ids"},
		{"neither format", without("manifest.json"), "manifest.json"},
		{"oci blob not matching its path", []member{layout, {name: "index.json", body: ociIndex},
			{name: blob(ociManifest), body: ociManifest}, {name: blob(cfg), body: cfg}, {name: blob(layer), body: otherLayer}}, blob(layer)},
		{"oci layer missing", []member{layout, {name: "index.json", body: ociIndex},
			{name: blob(ociManifest), body: ociManifest}, {name: blob(cfg), body: cfg}}, digest.FromBytes(layer).String()},
		{"oci manifest missing", []member{layout, {name: "index.json", body: ociIndex}}, digest.FromBytes(ociManifest).String()},
		{"oci without oci-layout", []member{{name: "index.json", body: ociIndex}}, "oci-layout"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Load(context.Background(), bytes.NewReader(tarball(t, c.members...)), newStore(t))
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("got %v, want invalid argument", err)
			}
			if !strings.Contains(err.Error(), c.naming) {
				t.Errorf("error %q does not name %q", err, c.naming)
			}
		})
	}
}

// TestLoadOCIIndexPicksPlatform: an index.json entry that is itself an
// image index (multi-platform) loads as this machine's platform manifest,
// and a descriptor without a media type is typed by its blob.
func TestLoadOCIIndexPicksPlatform(t *testing.T) {
	layer := rootfs(t, "multi")
	blob := func(b []byte) member { return member{name: "blobs/sha256/" + digest.FromBytes(b).Encoded(), body: b} }
	desc := func(mt string, b []byte) ocispec.Descriptor {
		return ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(b), Size: int64(len(b))}
	}
	members := []member{{name: "oci-layout", body: []byte(`{"imageLayoutVersion":"1.0.0"}`)}, blob(layer)}
	var children []ocispec.Descriptor
	var want digest.Digest
	for _, arch := range []string{"s390x-not-us", runtime.GOARCH} {
		var img ocispec.Image
		img.OS, img.Architecture = "linux", arch
		img.RootFS = ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{digest.FromBytes(layer)}}
		cfg, _ := json.Marshal(img)
		m, _ := json.Marshal(ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: desc(ocispec.MediaTypeImageConfig, cfg),
			Layers: []ocispec.Descriptor{desc(ocispec.MediaTypeImageLayer, layer)}})
		d := desc(ocispec.MediaTypeImageManifest, m)
		d.Platform = &ocispec.Platform{OS: "linux", Architecture: arch}
		children = append(children, d)
		members = append(members, blob(cfg), blob(m))
		want = d.Digest
	}
	idx, _ := json.Marshal(ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: children})
	top := desc("", idx)
	top.Annotations = map[string]string{annotationRefName: "example.com/multi:1"}
	outer, _ := json.Marshal(ocispec.Index{Manifests: []ocispec.Descriptor{top}})
	members = append(members, blob(idx), member{name: "index.json", body: outer})

	entries, err := Load(context.Background(), bytes.NewReader(tarball(t, members...)), newStore(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Manifest.Digest != want || entries[0].Names[0] != "example.com/multi:1" {
		t.Fatalf("entries %+v, want manifest %s", entries, want)
	}
}
