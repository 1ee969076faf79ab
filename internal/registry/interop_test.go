package registry

import (
	"bytes"
	"context"
	"os/exec"
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
)

// TestInteropSkopeo has skopeo, an independent client, read what Push
// wrote and rewrite it as a Docker schema 2 image, which Resolve and Fetch
// must then read.
func TestInteropSkopeo(t *testing.T) {
	skopeo, err := exec.LookPath("skopeo")
	if err != nil {
		t.Skip("skopeo not installed")
	}
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{Auth: "none"})
	ctx := context.Background()
	c := newClient(t)
	store := newBlobStore()
	img := buildImage(t, store, "amd64", nil)
	if _, err := c.Push(ctx, reg.Host+"/interop/oci:1", store, img.PushImage, nil); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(skopeo, "copy", "--src-tls-verify=false", "--dest-tls-verify=false", "--format", "v2s2",
		"docker://"+reg.Host+"/interop/oci:1", "docker://"+reg.Host+"/interop/docker:1").CombinedOutput()
	if err != nil {
		t.Fatalf("skopeo copy: %v\n%s", err, out)
	}
	res, err := c.Resolve(ctx, reg.Host+"/interop/docker:1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Manifest.MediaType != MediaTypeDockerManifest {
		t.Errorf("media type %q, want %q", res.Manifest.MediaType, MediaTypeDockerManifest)
	}
	// skopeo keeps compressed layers as they are, so the bytes match.
	for i, l := range img.Layers {
		l.MediaType = "application/vnd.docker.image.rootfs.diff.tar.gzip"
		if got := readAll(t, c.Fetcher(res.Repo), l); !bytes.Equal(got, img.layerData[i]) {
			t.Errorf("layer %d differs after skopeo's copy", i)
		}
	}
}
