package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"runtime"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Media types berth accepts besides the OCI ones.
const (
	MediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	mediaTypeSchema1            = "application/vnd.docker.distribution.manifest.v1+json"
	mediaTypeSchema1Signed      = "application/vnd.docker.distribution.manifest.v1+prettyjws"
)

// maxManifestSize bounds what is read into memory for a manifest; real
// manifests and indexes are a few KiB.
const maxManifestSize = 4 << 20

// Resolved is what a reference points at.
type Resolved struct {
	Name          string             // normalized reference
	Repo          string             // normalized repository, e.g. "127.0.0.1:5000/busybox"
	Digest        string             // repo@sha256:… of what the reference names (the index if it is one)
	Manifest      ocispec.Descriptor // the platform manifest, MediaType and Platform set
	ManifestBytes []byte             // its bytes, verified against Manifest.Digest
}

// Resolve fetches the manifest ref names. An index (or Docker manifest
// list) is resolved to the manifest for platform (nil = this host:
// linux/GOARCH, variant v7 on arm, v8 on arm64). Schema 1 manifests are
// refused with errdefs.ErrNotSupported.
func (c *Client) Resolve(ctx context.Context, ref string, platform *ocispec.Platform) (Resolved, error) {
	r, err := parse(ref)
	if err != nil {
		return Resolved{}, err
	}
	repo := r.Context()
	want := hostPlatform()
	if platform != nil {
		want = *platform
	}
	rt, err := c.transport(ctx, repo.Registry, []string{pullScope(repo)})
	if err != nil {
		return Resolved{}, fmt.Errorf("resolve %s: %w", ref, err)
	}
	res := Resolved{Name: normalizedName(r), Repo: repoName(repo)}
	var pinned digest.Digest
	if d, ok := r.(name.Digest); ok {
		pinned = digest.Digest(d.DigestStr())
	}
	body, mt, dgst, err := getManifest(ctx, rt, repo, r.Identifier(), pinned, -1, allManifestTypes)
	if err != nil {
		return Resolved{}, fmt.Errorf("resolve: %w", err)
	}
	res.Digest = res.Repo + "@" + dgst.String()
	if !isIndexType(mt) {
		res.Manifest = ocispec.Descriptor{MediaType: mt, Digest: dgst, Size: int64(len(body))}
		res.ManifestBytes = body
		return res, nil
	}
	var idx ocispec.Index
	if err := json.Unmarshal(body, &idx); err != nil {
		return Resolved{}, fmt.Errorf("resolve %s: decode index: %w", ref, err)
	}
	desc, ok := matchPlatform(idx.Manifests, want)
	if !ok {
		return Resolved{}, fmt.Errorf("resolve %s: %w: no manifest for platform %s in %s", ref, errdefs.ErrNotFound, platformString(want), res.Digest)
	}
	if isIndexType(desc.MediaType) {
		return Resolved{}, fmt.Errorf("resolve %s: %w: nested index %s", ref, errdefs.ErrNotSupported, desc.Digest)
	}
	body, mt, _, err = getManifest(ctx, rt, repo, desc.Digest.String(), desc.Digest, desc.Size, []string{desc.MediaType})
	if err != nil {
		return Resolved{}, fmt.Errorf("resolve %s: %w", ref, err)
	}
	if isIndexType(mt) {
		return Resolved{}, fmt.Errorf("resolve %s: %w: nested index %s", ref, errdefs.ErrNotSupported, desc.Digest)
	}
	desc.MediaType = mt
	res.Manifest = desc
	res.ManifestBytes = body
	return res, nil
}

var allManifestTypes = []string{
	ocispec.MediaTypeImageIndex, MediaTypeDockerManifestList,
	ocispec.MediaTypeImageManifest, MediaTypeDockerManifest,
	// Asked for so that the error can name schema 1 instead of the
	// registry answering 404 (or converting, which loses the digest).
	mediaTypeSchema1Signed, mediaTypeSchema1,
}

// getManifest GETs a manifest and checks it: pinned (when set) must be its
// digest, size (when >= 0) its size, and the registry's
// Docker-Content-Digest must agree with the bytes.
func getManifest(ctx context.Context, rt http.RoundTripper, repo name.Repository, ident string, pinned digest.Digest, size int64, accept []string) ([]byte, string, digest.Digest, error) {
	subject := repoName(repo) + sepFor(ident) + ident
	resp, err := get(ctx, rt, repo, "manifests", ident, strings.Join(accept, ", "))
	if err != nil {
		return nil, "", "", classify(err, subject)
	}
	defer resp.Body.Close()
	if err := checkResponse(resp, subject, http.StatusOK); err != nil {
		return nil, "", "", err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxManifestSize+1))
	if err != nil {
		return nil, "", "", classify(err, "read manifest "+subject)
	}
	if len(body) > maxManifestSize {
		return nil, "", "", fmt.Errorf("manifest %s: %w: larger than %d bytes", subject, errdefs.ErrNotSupported, maxManifestSize)
	}
	algo := digest.Canonical
	if pinned != "" {
		algo = pinned.Algorithm()
	}
	dgst := algo.FromBytes(body)
	if pinned != "" && dgst != pinned {
		return nil, "", "", fmt.Errorf("manifest %s: %w: digest mismatch: got %s", subject, ErrVerify, dgst)
	}
	if size >= 0 && int64(len(body)) != size {
		return nil, "", "", fmt.Errorf("manifest %s: %w: got %d bytes, want %d", subject, ErrVerify, len(body), size)
	}
	if h := digest.Digest(resp.Header.Get("Docker-Content-Digest")); h != "" && h.Validate() == nil && h.Algorithm() == algo && h != dgst {
		return nil, "", "", fmt.Errorf("manifest %s: %w: registry says %s, content is %s", subject, ErrVerify, h, dgst)
	}
	mt := manifestType(resp.Header.Get("Content-Type"), body)
	if mt == mediaTypeSchema1 || mt == mediaTypeSchema1Signed {
		return nil, "", "", fmt.Errorf("manifest %s: %w: schema 1 manifest (%s) is deprecated; push the image again with a current client", subject, errdefs.ErrNotSupported, mt)
	}
	if !isManifestType(mt) {
		return nil, "", "", fmt.Errorf("manifest %s: %w: unknown media type %q", subject, errdefs.ErrNotSupported, mt)
	}
	return body, mt, dgst, nil
}

func sepFor(ident string) string {
	if strings.Contains(ident, ":") {
		return "@"
	}
	return ":"
}

// manifestType prefers the manifest's own mediaType field (it is what the
// digest covers) over the Content-Type header, and guesses from the shape
// for OCI manifests that omit both.
func manifestType(contentType string, body []byte) string {
	var probe struct {
		SchemaVersion int               `json:"schemaVersion"`
		MediaType     string            `json:"mediaType"`
		Manifests     json.RawMessage   `json:"manifests"`
		Layers        json.RawMessage   `json:"layers"`
		FSLayers      []json.RawMessage `json:"fsLayers"`
	}
	if err := json.Unmarshal(body, &probe); err == nil {
		switch {
		case probe.SchemaVersion == 1 || probe.FSLayers != nil:
			return mediaTypeSchema1
		case probe.MediaType != "":
			return probe.MediaType
		}
		ct, _, _ := mime.ParseMediaType(contentType)
		if isManifestType(ct) {
			return ct
		}
		switch {
		case probe.Manifests != nil:
			return ocispec.MediaTypeImageIndex
		case probe.Layers != nil:
			return ocispec.MediaTypeImageManifest
		}
	}
	ct, _, _ := mime.ParseMediaType(contentType)
	return ct
}

func isIndexType(mt string) bool {
	return mt == ocispec.MediaTypeImageIndex || mt == MediaTypeDockerManifestList
}

func isManifestType(mt string) bool {
	switch mt {
	case ocispec.MediaTypeImageIndex, MediaTypeDockerManifestList,
		ocispec.MediaTypeImageManifest, MediaTypeDockerManifest,
		mediaTypeSchema1, mediaTypeSchema1Signed:
		return true
	}
	return false
}

// hostPlatform is the platform an unqualified pull wants.
func hostPlatform() ocispec.Platform {
	p := ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}
	switch runtime.GOARCH {
	case "arm":
		p.Variant = "v7"
	case "arm64":
		p.Variant = "v8"
	}
	return p
}

// matchPlatform picks the best manifest for want: same OS and
// architecture, and the closest variant at or below want's (an arm v7 host
// runs v6 and v5 images; arm64 manifests often omit "v8").
func matchPlatform(manifests []ocispec.Descriptor, want ocispec.Platform) (ocispec.Descriptor, bool) {
	best, bestRank := ocispec.Descriptor{}, -1
	for _, m := range manifests {
		if m.Platform == nil || m.Platform.OS != want.OS || normArch(m.Platform.Architecture) != normArch(want.Architecture) {
			continue
		}
		if want.OSVersion != "" && m.Platform.OSVersion != "" && m.Platform.OSVersion != want.OSVersion {
			continue
		}
		rank := variantRank(want, m.Platform.Variant)
		if rank > bestRank {
			best, bestRank = m, rank
		}
	}
	return best, bestRank >= 0
}

// variantRank scores a manifest's variant for want (-1 = unusable).
func variantRank(want ocispec.Platform, got string) int {
	if want.Variant == "" || got == want.Variant {
		return 100
	}
	arch := normArch(want.Architecture)
	if arch == "arm64" && got == "" && want.Variant == "v8" {
		return 99
	}
	if arch == "arm" {
		order := []string{"v8", "v7", "v6", "v5"}
		wi, gi := -1, -1
		for i, v := range order {
			if v == want.Variant {
				wi = i
			}
			if v == got {
				gi = i
			}
		}
		if got == "" {
			return 1
		}
		if wi >= 0 && gi > wi {
			return 100 - gi
		}
	}
	return -1
}

func normArch(a string) string {
	switch a {
	case "x86_64", "x86-64":
		return "amd64"
	case "aarch64":
		return "arm64"
	case "i386", "i686":
		return "386"
	}
	return a
}

func platformString(p ocispec.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}
