package registry

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strconv"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ErrVerify marks content whose digest or size differs from its
// descriptor: the registry (or something between us) served other bytes.
var ErrVerify = errors.New("content verification failed")

// Fetcher reads blobs and manifests of one repository. Fetch may be called
// from many goroutines at once: they share one authenticated transport and
// its pooled connections.
type Fetcher struct {
	c    *Client
	repo name.Repository
	err  error // a malformed repository name, reported by Fetch
}

// Fetcher returns a Fetcher for repo ("127.0.0.1:5000/busybox",
// "docker.io/library/busybox"; Resolved.Repo is in this form).
func (c *Client) Fetcher(repo string) *Fetcher {
	r, err := parseRepo(repo)
	return &Fetcher{c: c, repo: r, err: err}
}

// Fetch streams the blob or manifest desc names (manifests are recognized
// by media type). The stream is verified as it is read: reading past
// desc.Size fails at once, and at EOF a short read or a digest mismatch is
// an error wrapping ErrVerify, so a caller that consumes the stream to EOF
// without error has exactly the bytes desc names. desc.Size must be exact.
// A caller that verifies the digest itself may call the stream's
// DeferDigest method (see verifier.DeferDigest) to skip the second hash.
func (f *Fetcher) Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	if f.err != nil {
		return nil, f.err
	}
	if err := desc.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("fetch %s: %w: %v", desc.Digest, errdefs.ErrInvalidArgument, err)
	}
	subject := f.repo.Name() + "@" + desc.Digest.String()
	rt, err := f.c.transport(ctx, f.repo.Registry, []string{pullScope(f.repo)})
	if err != nil {
		return nil, err
	}
	kind, accept := "blobs", ""
	if isManifestType(desc.MediaType) {
		kind, accept = "manifests", desc.MediaType
	}
	resp, err := get(ctx, rt, f.repo, kind, desc.Digest.String(), accept)
	if err != nil {
		return nil, classify(err, subject)
	}
	if err := checkResponse(resp, subject, http.StatusOK); err != nil {
		resp.Body.Close()
		return nil, err
	}
	if desc.Size >= 0 && resp.ContentLength > desc.Size {
		resp.Body.Close()
		return nil, fmt.Errorf("fetch %s: %w: registry announces %d bytes, descriptor says %d", subject, ErrVerify, resp.ContentLength, desc.Size)
	}
	body := resp.Body
	if kind == "blobs" && desc.Size > 0 {
		body = &resumer{ctx: ctx, body: resp.Body, size: desc.Size, backoff: resumeBackoff,
			refetch: func(ctx context.Context, from int64) (*http.Response, error) {
				resp, err := getFrom(ctx, rt, f.repo, desc.Digest.String(), from)
				return resp, classify(err, subject)
			}}
	}
	return newVerifier(body, desc, subject), nil
}

// get issues GET /v2/<repo>/<kind>/<ref>. Redirects (blob storage) are
// followed; the bearer transport sends the registry's token only to the
// registry's host.
func get(ctx context.Context, rt http.RoundTripper, repo name.Repository, kind, ref, accept string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint(repo, kind, ref), nil)
	if err != nil {
		return nil, err
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	return (&http.Client{Transport: rt}).Do(req)
}

// getFrom asks for a blob from byte from on (a resume; see resumer). The
// transfer must not be content-encoded: a range of a gzip-encoded response
// is not a range of the blob.
func getFrom(ctx context.Context, rt http.RoundTripper, repo name.Repository, ref string, from int64) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint(repo, "blobs", ref), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Range", "bytes="+strconv.FormatInt(from, 10)+"-")
	req.Header.Set("Accept-Encoding", "identity")
	return (&http.Client{Transport: rt}).Do(req)
}

// endpoint is the URL of /v2/<repo>/<kind>/<ref>. The scheme is a first
// guess: the transport rewrites it to what the ping found.
func endpoint(repo name.Repository, kind, ref string) string {
	return fmt.Sprintf("%s://%s/v2/%s/%s/%s", repo.Registry.Scheme(), repo.RegistryStr(), repo.RepositoryStr(), kind, ref)
}

// verifier checks size and digest of a stream while it is read.
type verifier struct {
	rc      io.ReadCloser
	h       hash.Hash // nil after DeferDigest
	want    digest.Digest
	size    int64 // < 0: unknown
	n       int64
	subject string
	err     error // sticky
}

func newVerifier(rc io.ReadCloser, desc ocispec.Descriptor, subject string) *verifier {
	return &verifier{rc: rc, h: desc.Digest.Algorithm().Hash(), want: desc.Digest, size: desc.Size, subject: subject}
}

func (v *verifier) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.rc.Read(p)
	v.n += int64(n)
	if v.h != nil {
		v.h.Write(p[:n])
	}
	if v.size >= 0 && v.n > v.size {
		v.err = fmt.Errorf("fetch %s: %w: more than the %d bytes the descriptor names", v.subject, ErrVerify, v.size)
		return 0, v.err
	}
	if err == io.EOF {
		if v.size >= 0 && v.n != v.size {
			v.err = fmt.Errorf("fetch %s: %w: got %d bytes, want %d", v.subject, ErrVerify, v.n, v.size)
			return n, v.err
		}
		if v.h != nil { // else the reader checks it (DeferDigest)
			if got := digest.NewDigestFromBytes(v.want.Algorithm(), v.h.Sum(nil)); got != v.want {
				v.err = fmt.Errorf("fetch %s: %w: digest mismatch: got %s", v.subject, ErrVerify, got)
				return n, v.err
			}
		}
		v.err = io.EOF
	} else if err != nil {
		v.err = classify(err, "fetch "+v.subject)
	}
	return n, v.err
}

func (v *verifier) Close() error { return v.rc.Close() }

// DeferDigest hands the digest check to the caller, who must verify every
// byte it reads against the descriptor's digest before trusting any of it
// (image.Store.Fetch writes the stream into a content ingest, whose Commit
// does exactly that). The stream then stops hashing: a layer is hashed
// once instead of twice, which is a tenth of a pull's CPU time. Size
// limits still hold. Call it before the first Read.
func (v *verifier) DeferDigest() { v.h = nil }
