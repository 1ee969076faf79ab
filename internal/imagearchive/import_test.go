package imagearchive

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"runtime"
	"testing"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestImportLayer(t *testing.T) {
	raw := rootfs(t, "layer")
	for _, c := range []struct {
		name string
		comp archive.Compression
	}{
		{"uncompressed", archive.Uncompressed},
		{"gzip", archive.Gzip},
		{"zstd", archive.Zstd},
	} {
		t.Run(c.name, func(t *testing.T) {
			var in bytes.Buffer
			zw, err := archive.Compress(&in, c.comp)
			if err != nil {
				t.Fatal(err)
			}
			zw.Write(raw)
			zw.Close()
			cs := newStore(t)
			e, err := Import(context.Background(), &in, cs, ImportOptions{Message: "hello"})
			if err != nil {
				t.Fatal(err)
			}
			m, cfg := imageOf(t, cs, e)
			if e.Manifest.MediaType != ocispec.MediaTypeImageManifest || m.Config.MediaType != ocispec.MediaTypeImageConfig {
				t.Errorf("media types %q, %q", e.Manifest.MediaType, m.Config.MediaType)
			}
			if len(m.Layers) != 1 || m.Layers[0].MediaType != ocispec.MediaTypeImageLayerGzip {
				t.Fatalf("layers %+v", m.Layers)
			}
			if want := digest.FromBytes(raw); !reflect.DeepEqual(cfg.RootFS.DiffIDs, []digest.Digest{want}) {
				t.Errorf("diff_ids %v, want [%s]", cfg.RootFS.DiffIDs, want)
			}
			// The stored blob is gzip and decompresses to the input tar.
			blob := blobBytes(t, cs, m.Layers[0].Digest)
			rc, comp, err := archive.Decompress(bytes.NewReader(blob))
			if err != nil || comp != archive.Gzip {
				t.Fatalf("layer blob: compression %v, %v", comp, err)
			}
			var out bytes.Buffer
			out.ReadFrom(rc)
			if !bytes.Equal(out.Bytes(), raw) {
				t.Error("layer content differs from the imported tar")
			}
			if cfg.OS != "linux" || cfg.Architecture != runtime.GOARCH || e.Manifest.Platform == nil || e.Manifest.Platform.Architecture != runtime.GOARCH {
				t.Errorf("platform %s/%s, descriptor %+v", cfg.OS, cfg.Architecture, e.Manifest.Platform)
			}
			if len(cfg.History) != 1 || cfg.History[0].Comment != "hello" {
				t.Errorf("history %+v", cfg.History)
			}
		})
	}
}

func TestImportChanges(t *testing.T) {
	for _, c := range []struct {
		name    string
		changes []string
		check   func(ocispec.ImageConfig) bool
	}{
		{"cmd exec form", []string{`CMD ["/bin/hello", "a b"]`}, func(c ocispec.ImageConfig) bool {
			return reflect.DeepEqual(c.Cmd, []string{"/bin/hello", "a b"})
		}},
		{"cmd shell form", []string{`CMD echo hi`}, func(c ocispec.ImageConfig) bool {
			return reflect.DeepEqual(c.Cmd, []string{"/bin/sh", "-c", "echo hi"})
		}},
		{"entrypoint lower case", []string{`entrypoint ["/bin/sh"]`}, func(c ocispec.ImageConfig) bool {
			return reflect.DeepEqual(c.Entrypoint, []string{"/bin/sh"})
		}},
		{"env pairs and legacy, later wins", []string{`ENV A=1 B="two words"`, `ENV C three words`, `ENV A=x`}, func(c ocispec.ImageConfig) bool {
			return reflect.DeepEqual(c.Env, []string{"A=x", "B=two words", "C=three words"})
		}},
		{"expose", []string{`EXPOSE 80 53/udp`}, func(c ocispec.ImageConfig) bool {
			return reflect.DeepEqual(c.ExposedPorts, map[string]struct{}{"80/tcp": {}, "53/udp": {}})
		}},
		{"label", []string{`LABEL a=b "c d"=e`}, func(c ocispec.ImageConfig) bool {
			return reflect.DeepEqual(c.Labels, map[string]string{"a": "b", "c d": "e"})
		}},
		{"user", []string{`USER 1000:1000`}, func(c ocispec.ImageConfig) bool { return c.User == "1000:1000" }},
		{"volume json and words", []string{`VOLUME ["/data"]`, `VOLUME /a /b`}, func(c ocispec.ImageConfig) bool {
			return reflect.DeepEqual(c.Volumes, map[string]struct{}{"/data": {}, "/a": {}, "/b": {}})
		}},
		{"workdir relative continues", []string{`WORKDIR /app`, `WORKDIR sub`}, func(c ocispec.ImageConfig) bool { return c.WorkingDir == "/app/sub" }},
	} {
		t.Run(c.name, func(t *testing.T) {
			cs := newStore(t)
			e := importRootfs(t, cs, "changes", c.changes...)
			_, cfg := imageOf(t, cs, e)
			if !c.check(cfg.Config) {
				t.Errorf("config after %q: %+v", c.changes, cfg.Config)
			}
		})
	}
}

func TestImportRejects(t *testing.T) {
	for _, c := range []struct {
		name  string
		input []byte
		opts  ImportOptions
	}{
		{"unknown instruction", rootfs(t, "x"), ImportOptions{Changes: []string{"RUN rm -rf /"}}},
		{"missing argument", rootfs(t, "x"), ImportOptions{Changes: []string{"CMD"}}},
		{"bad port", rootfs(t, "x"), ImportOptions{Changes: []string{"EXPOSE http"}}},
		{"bad env", rootfs(t, "x"), ImportOptions{Changes: []string{`ENV A=1 =2`}}},
		{"unterminated quote", rootfs(t, "x"), ImportOptions{Changes: []string{`LABEL a="b`}}},
		{"not a tar", bytes.Repeat([]byte("not a tar "), 100), ImportOptions{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Import(context.Background(), bytes.NewReader(c.input), newStore(t), c.opts)
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("got %v, want invalid argument", err)
			}
		})
	}
}
