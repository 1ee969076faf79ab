package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/testutil"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func newClient(t *testing.T) *Client {
	return New(Options{ConfigDir: t.TempDir(), UserAgent: "berth-test"})
}

// tokenRegistry starts the real registry with token auth and returns it
// with a client logged in to it.
func tokenRegistry(t *testing.T) (*testutil.Registry, *Client) {
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{Auth: "token"})
	c := newClient(t)
	if err := c.Login(context.Background(), reg.Host, reg.User, reg.Password); err != nil {
		t.Fatal(err)
	}
	return reg, c
}

// TestPushPull pushes a fresh image and pulls it back by tag and by
// digest, fetching every blob concurrently through one Fetcher.
func TestPushPull(t *testing.T) {
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{Auth: "none"})
	ctx := context.Background()
	c := newClient(t)
	store := newBlobStore()
	img := buildImage(t, store, "amd64", nil)
	ref := reg.Host + "/berth/app:v1"

	var log progressLog
	dgst, err := c.Push(ctx, ref, store, img.PushImage, log.record)
	if err != nil {
		t.Fatal(err)
	}
	if dgst != img.Manifest.Digest {
		t.Fatalf("push returned %s, want %s", dgst, img.Manifest.Digest)
	}
	for _, l := range img.Layers {
		if got := log.final()[shortID(l.Digest)]; got != "Pushed" {
			t.Errorf("layer %s: last action %q, want Pushed", shortID(l.Digest), got)
		}
	}

	for _, tc := range []struct{ name, ref string }{
		{"tag", ref},
		{"digest", reg.Host + "/berth/app@" + dgst.String()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := c.Resolve(ctx, tc.ref, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.Repo != reg.Host+"/berth/app" || res.Digest != res.Repo+"@"+dgst.String() {
				t.Errorf("resolved repo %q digest %q", res.Repo, res.Digest)
			}
			if res.Manifest.Digest != dgst || res.Manifest.MediaType != ocispec.MediaTypeImageManifest || !bytes.Equal(res.ManifestBytes, img.ManifestBytes) {
				t.Errorf("resolved manifest %+v", res.Manifest)
			}
			f := c.Fetcher(res.Repo)
			if got := readAll(t, f, res.Manifest); !bytes.Equal(got, img.ManifestBytes) {
				t.Error("manifest fetched by digest differs")
			}
			var wg sync.WaitGroup
			for i, l := range append([]ocispec.Descriptor{img.Config}, img.Layers...) {
				wg.Add(1)
				go func() {
					defer wg.Done()
					got := readAll(t, f, l)
					if want := store.blobs[l.Digest]; !bytes.Equal(got, want) {
						t.Errorf("blob %d differs", i)
					}
				}()
			}
			wg.Wait()
		})
	}

	t.Run("not found", func(t *testing.T) {
		for _, r := range []string{reg.Host + "/berth/app:nope", reg.Host + "/berth/missing:v1"} {
			_, err := c.Resolve(ctx, r, nil)
			if !errdefs.IsNotFound(err) {
				t.Errorf("resolve %s: %v, want ErrNotFound", r, err)
			}
		}
		_, err := c.Resolve(ctx, reg.Host+"/berth/app:nope", nil)
		if err == nil || !strings.Contains(err.Error(), "manifest unknown: "+reg.Host+"/berth/app:nope") {
			t.Errorf("message %q does not name the manifest", err)
		}
		rc, err := c.Fetcher(reg.Host+"/berth/app").Fetch(ctx, ocispec.Descriptor{Digest: digest.FromString("nope"), Size: 4})
		if err == nil {
			rc.Close()
		}
		if !errdefs.IsNotFound(err) {
			t.Errorf("fetch missing blob: %v, want ErrNotFound", err)
		}
	})
}

// TestResolveIndex pushes two platform images and an index over them and
// checks that each platform resolves to its own manifest.
func TestResolveIndex(t *testing.T) {
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{Auth: "none"})
	ctx := context.Background()
	c := newClient(t)
	store := newBlobStore()
	repo := reg.Host + "/multi"
	plats := []ocispec.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64", Variant: "v8"}}
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex}
	idx.SchemaVersion = 2
	byArch := map[string]digest.Digest{}
	for _, p := range plats {
		img := buildImage(t, store, p.Architecture, [][]byte{randomLayer(t, 2<<10)})
		if _, err := c.Push(ctx, repo+"@"+img.Manifest.Digest.String(), store, img.PushImage, nil); err != nil {
			t.Fatal(err)
		}
		d := img.Manifest
		d.Platform = &p
		idx.Manifests = append(idx.Manifests, d)
		byArch[p.Architecture] = d.Digest
	}
	idxBytes, _ := json.Marshal(idx)
	idxDesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: digest.FromBytes(idxBytes), Size: int64(len(idxBytes))}
	if _, err := c.Push(ctx, repo+":latest", store, PushImage{Manifest: idxDesc, ManifestBytes: idxBytes}, nil); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name    string
		want    *ocispec.Platform
		arch    string
		missing bool
	}{
		{name: "amd64", want: &ocispec.Platform{OS: "linux", Architecture: "amd64"}, arch: "amd64"},
		{name: "arm64 v8", want: &ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}, arch: "arm64"},
		{name: "aarch64 alias", want: &ocispec.Platform{OS: "linux", Architecture: "aarch64"}, arch: "arm64"},
		{name: "absent", want: &ocispec.Platform{OS: "linux", Architecture: "s390x"}, missing: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := c.Resolve(ctx, repo, tc.want)
			if tc.missing {
				if !errdefs.IsNotFound(err) {
					t.Fatalf("resolve: %v, want ErrNotFound", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Manifest.Digest != byArch[tc.arch] {
				t.Errorf("got manifest %s, want %s", res.Manifest.Digest, byArch[tc.arch])
			}
			if res.Digest != repo+"@"+idxDesc.Digest.String() {
				t.Errorf("Digest %s, want the index's", res.Digest)
			}
			if res.Name != repo+":latest" || res.Manifest.MediaType != ocispec.MediaTypeImageManifest {
				t.Errorf("name %q media type %q", res.Name, res.Manifest.MediaType)
			}
			if digest.FromBytes(res.ManifestBytes) != res.Manifest.Digest {
				t.Error("manifest bytes do not match digest")
			}
		})
	}
}

// TestPushSkipAndMount pushes an image, then pushes it again (every layer
// exists) and into another repository with MountFrom (layers mounted, not
// uploaded), and a new image sharing one layer (one skipped, one pushed).
func TestPushSkipAndMount(t *testing.T) {
	reg, c := tokenRegistry(t)
	ctx := context.Background()
	store := newBlobStore()
	img := buildImage(t, store, "amd64", nil)
	src := reg.Host + "/library/base"
	if _, err := c.Push(ctx, src+":1", store, img.PushImage, nil); err != nil {
		t.Fatal(err)
	}
	opensAfterFirst := len(store.opened)

	mounted := img.PushImage
	mounted.MountFrom = map[digest.Digest][]string{}
	for _, l := range img.Layers {
		mounted.MountFrom[l.Digest] = []string{src}
	}
	mounted.MountFrom[img.Config.Digest] = []string{src}

	shared := buildImage(t, store, "amd64", [][]byte{img.layerData[0], randomLayer(t, 4<<10)})

	for _, tc := range []struct {
		name string
		ref  string
		img  PushImage
		want []string // final action per layer, in order
	}{
		{"same repo again", src + ":2", img.PushImage, []string{"Layer already exists", "Layer already exists"}},
		{"mount", reg.Host + "/other/app:1", mounted, []string{"Mounted from " + reg.Host + "/library/base", "Mounted from " + reg.Host + "/library/base"}},
		{"one shared layer", src + ":3", shared.PushImage, []string{"Layer already exists", "Pushed"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var log progressLog
			if _, err := c.Push(ctx, tc.ref, store, tc.img, log.record); err != nil {
				t.Fatal(err)
			}
			final := log.final()
			for i, l := range tc.img.Layers {
				if got := final[shortID(l.Digest)]; got != tc.want[i] {
					t.Errorf("layer %d: %q, want %q", i, got, tc.want[i])
				}
			}
			if _, err := c.Resolve(ctx, tc.ref, nil); err != nil {
				t.Errorf("resolve after push: %v", err)
			}
		})
	}
	// Only the new layer and the new config were read again.
	if got := len(store.opened) - opensAfterFirst; got != 2 {
		t.Errorf("%d new blobs opened after the first push, want 2", got)
	}
	for d, n := range store.opened {
		if n != 1 {
			t.Errorf("blob %s opened %d times", shortID(d), n)
		}
	}
}

// TestAuth runs one push/pull per auth mode with good, wrong and missing
// credentials.
func TestAuth(t *testing.T) {
	for _, mode := range []string{"none", "basic", "token"} {
		t.Run(mode, func(t *testing.T) {
			reg := testutil.StartRegistry(t, testutil.RegistryOptions{Auth: mode})
			ctx := context.Background()
			store := newBlobStore()
			img := buildImage(t, store, "amd64", [][]byte{randomLayer(t, 8<<10)})
			ref := reg.Host + "/auth/app:v1"

			anon := newClient(t)
			_, err := anon.Push(ctx, ref, store, img.PushImage, nil)
			if mode == "none" {
				if err != nil {
					t.Fatalf("anonymous push: %v", err)
				}
				if err := anon.Login(ctx, reg.Host, "any", "thing"); err != nil {
					t.Errorf("login to a registry without auth: %v", err)
				}
				return
			}
			if !errors.Is(err, errdefs.ErrPermission) {
				t.Fatalf("anonymous push: %v, want ErrPermission", err)
			}

			wrong := newClient(t)
			err = wrong.Login(ctx, reg.Host, reg.User, "wrong-password")
			if !errors.Is(err, errdefs.ErrPermission) {
				t.Fatalf("login with a wrong password: %v, want ErrPermission", err)
			}
			if mode == "token" && !strings.Contains(err.Error(), "incorrect username or password") {
				t.Errorf("error %q does not carry the token server's message", err)
			}

			good := newClient(t)
			if err := good.Login(ctx, reg.Host, reg.User, reg.Password); err != nil {
				t.Fatal(err)
			}
			if _, err := good.Push(ctx, ref, store, img.PushImage, nil); err != nil {
				t.Fatal(err)
			}
			res, err := good.Resolve(ctx, ref, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := readAll(t, good.Fetcher(res.Repo), img.Layers[0]); !bytes.Equal(got, img.layerData[0]) {
				t.Error("pulled layer differs")
			}
			if _, err := anon.Resolve(ctx, ref, nil); !errors.Is(err, errdefs.ErrPermission) {
				t.Errorf("anonymous pull: %v, want ErrPermission", err)
			}
			if mode == "token" && reg.TokenRequests() == 0 {
				t.Error("no token was requested")
			}
		})
	}
}

func TestErrorsClassified(t *testing.T) {
	c := newClient(t)
	for _, ref := range []string{"", "UPPER/case", "bad ref", "a@sha256:zz"} {
		if _, err := c.Resolve(context.Background(), ref, nil); !errdefs.IsInvalidArgument(err) {
			t.Errorf("resolve %q: %v, want ErrInvalidArgument", ref, err)
		}
	}
	var re *regError
	err := invalid("x", errEmpty)
	if !errors.As(err, &re) || !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("invalid() is not classified: %v", err)
	}
}
