package registry

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// maxConcurrentUploads is docker's default (max-concurrent-uploads).
const maxConcurrentUploads = 5

// PushSource gives the blobs of an image being pushed. Open is called from
// several goroutines at once, once per blob the registry lacks.
type PushSource interface {
	Open(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error)
}

// PushImage is what Push uploads. For an index, Config and Layers are
// empty and the child manifests must have been pushed (by digest) first.
type PushImage struct {
	Manifest      ocispec.Descriptor // MediaType set (or read from ManifestBytes); Digest checked when set
	ManifestBytes []byte
	Config        ocispec.Descriptor // zero for an index
	Layers        []ocispec.Descriptor
	// MountFrom names, per blob, repositories on the same registry that
	// hold it ("127.0.0.1:5000/other"); the registry is asked to mount the
	// blob from them instead of receiving it again.
	MountFrom map[digest.Digest][]string
}

// PushProgress is one event of a push, per layer (ID = the first 12 hex
// characters of its digest, like docker). Action is "Preparing",
// "Waiting", "Pushing" (Current/Total in bytes), "Pushed", "Layer already
// exists" or "Mounted from REPO" (REPO in familiar form).
type PushProgress struct {
	ID      string
	Action  string
	Current int64
	Total   int64
}

// Push uploads img to ref: the blobs the registry lacks (checked with
// HEAD, mounted from MountFrom when it can, else uploaded; up to 5 at
// once), then the manifest under ref's tag (or digest). progress may be
// nil; Push serializes its calls. It returns the manifest's digest.
func (c *Client) Push(ctx context.Context, ref string, src PushSource, img PushImage, progress func(PushProgress)) (digest.Digest, error) {
	r, err := parse(ref)
	if err != nil {
		return "", err
	}
	repo := r.Context()
	mt := img.Manifest.MediaType
	if mt == "" {
		mt = manifestType("", img.ManifestBytes)
	}
	if !isManifestType(mt) || mt == mediaTypeSchema1 || mt == mediaTypeSchema1Signed {
		return "", fmt.Errorf("push %s: %w: manifest media type %q", ref, errdefs.ErrInvalidArgument, mt)
	}
	algo := digest.Canonical
	if img.Manifest.Digest != "" {
		algo = img.Manifest.Digest.Algorithm()
	}
	if !algo.Available() {
		return "", fmt.Errorf("push %s: %w: manifest digest %q", ref, errdefs.ErrInvalidArgument, img.Manifest.Digest)
	}
	dgst := algo.FromBytes(img.ManifestBytes)
	if img.Manifest.Digest != "" && img.Manifest.Digest != dgst {
		return "", fmt.Errorf("push %s: %w: manifest bytes hash to %s, descriptor says %s", ref, errdefs.ErrInvalidArgument, dgst, img.Manifest.Digest)
	}
	if d, ok := r.(name.Digest); ok && d.DigestStr() != dgst.String() {
		return "", fmt.Errorf("push %s: %w: manifest is %s", ref, errdefs.ErrInvalidArgument, dgst)
	}

	// Mount sources need pull access, requested up front so the token
	// covers them all (registries often honour only the scopes they were
	// asked for when the token was issued).
	froms := map[digest.Digest][]name.Repository{}
	scopes := []string{repo.Scope(transport.PushScope)}
	seen := map[string]bool{repo.Name(): true}
	for d, repos := range img.MountFrom {
		for _, s := range repos {
			fr, err := parseRepo(s)
			if err != nil || fr.RegistryStr() != repo.RegistryStr() || fr.Name() == repo.Name() {
				continue
			}
			froms[d] = append(froms[d], fr)
			if !seen[fr.Name()] {
				seen[fr.Name()] = true
				scopes = append(scopes, pullScope(fr))
			}
		}
	}
	rt, err := c.transport(ctx, repo.Registry, scopes)
	if err != nil {
		return "", fmt.Errorf("push %s: %w", ref, err)
	}

	var mu sync.Mutex
	emit := func(p PushProgress) {
		if progress != nil {
			mu.Lock()
			progress(p)
			mu.Unlock()
		}
	}
	type job struct {
		desc   ocispec.Descriptor
		report bool
	}
	var jobs []job
	queued := map[digest.Digest]bool{}
	for _, l := range img.Layers {
		if !queued[l.Digest] {
			queued[l.Digest] = true
			jobs = append(jobs, job{l, true})
			emit(PushProgress{ID: shortID(l.Digest), Action: "Preparing"})
		}
	}
	for _, j := range jobs {
		emit(PushProgress{ID: shortID(j.desc.Digest), Action: "Waiting"})
	}
	if img.Config.Digest != "" && !queued[img.Config.Digest] {
		jobs = append(jobs, job{img.Config, false})
	}

	up := &uploader{rt: rt, repo: repo, src: src}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
		sem      = make(chan struct{}, maxConcurrentUploads)
	)
	for _, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-sem }()
			report := func(p PushProgress) {
				if j.report {
					p.ID = shortID(j.desc.Digest)
					emit(p)
				}
			}
			if err := up.blob(ctx, j.desc, froms[j.desc.Digest], report); err != nil {
				errOnce.Do(func() { firstErr = err; cancel() })
			}
		}()
	}
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	if firstErr != nil {
		return "", fmt.Errorf("push %s: %w", ref, firstErr)
	}
	if err := up.manifest(ctx, r.Identifier(), mt, img.ManifestBytes, dgst); err != nil {
		return "", fmt.Errorf("push %s: %w", ref, err)
	}
	return dgst, nil
}

func shortID(d digest.Digest) string {
	e := d.Encoded()
	if len(e) > 12 {
		e = e[:12]
	}
	return e
}

// uploader speaks the blob-upload protocol for one repository.
type uploader struct {
	rt   http.RoundTripper
	repo name.Repository
	src  PushSource
}

func (u *uploader) do(req *http.Request) (*http.Response, error) {
	return (&http.Client{Transport: u.rt}).Do(req)
}

// blob makes desc present in the repository.
func (u *uploader) blob(ctx context.Context, desc ocispec.Descriptor, froms []name.Repository, report func(PushProgress)) error {
	subject := u.repo.Name() + "@" + desc.Digest.String()
	exists, err := u.exists(ctx, desc)
	if err != nil {
		return err
	}
	if exists {
		report(PushProgress{Action: "Layer already exists", Current: desc.Size, Total: desc.Size})
		return nil
	}
	var loc *url.URL
	for _, from := range froms {
		mounted, l, err := u.mount(ctx, desc, from)
		if err != nil {
			// A refused or failed mount is not fatal: upload instead.
			continue
		}
		if mounted {
			report(PushProgress{Action: "Mounted from " + familiar(repoName(from)), Current: desc.Size, Total: desc.Size})
			return nil
		}
		// The registry opened an upload session instead of mounting.
		loc = l
		break
	}
	if loc == nil {
		if loc, err = u.startUpload(ctx, ""); err != nil {
			return err
		}
	}

	rc, err := u.src.Open(ctx, desc)
	if err != nil {
		return fmt.Errorf("open %s: %w", desc.Digest, err)
	}
	defer rc.Close()
	report(PushProgress{Action: "Pushing", Total: desc.Size})
	body := &countingReader{r: rc, report: func(n int64) { report(PushProgress{Action: "Pushing", Current: n, Total: desc.Size}) }}
	req, err := http.NewRequestWithContext(ctx, http.MethodPatch, loc.String(), body)
	if err != nil {
		return err
	}
	req.ContentLength = desc.Size
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := u.do(req)
	if err != nil {
		return classify(err, "upload "+subject)
	}
	drain(resp)
	if err := checkResponse(resp, "upload "+subject, http.StatusAccepted, http.StatusNoContent, http.StatusCreated); err != nil {
		return err
	}
	if loc, err = location(resp); err != nil {
		return fmt.Errorf("upload %s: %w", subject, err)
	}
	q := loc.Query()
	q.Set("digest", desc.Digest.String())
	loc.RawQuery = q.Encode()
	req, err = http.NewRequestWithContext(ctx, http.MethodPut, loc.String(), http.NoBody)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err = u.do(req)
	if err != nil {
		return classify(err, "commit "+subject)
	}
	drain(resp)
	if err := checkResponse(resp, "commit "+subject, http.StatusCreated, http.StatusNoContent, http.StatusAccepted); err != nil {
		return err
	}
	report(PushProgress{Action: "Pushed", Current: desc.Size, Total: desc.Size})
	return nil
}

func (u *uploader) exists(ctx context.Context, desc ocispec.Descriptor) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, endpoint(u.repo, "blobs", desc.Digest.String()), nil)
	if err != nil {
		return false, err
	}
	resp, err := u.do(req)
	if err != nil {
		return false, classify(err, "check "+u.repo.Name()+"@"+desc.Digest.String())
	}
	drain(resp)
	switch resp.StatusCode {
	case http.StatusOK:
		return true, nil
	case http.StatusNotFound:
		return false, nil
	}
	return false, checkResponse(resp, "check "+u.repo.Name()+"@"+desc.Digest.String(), http.StatusOK)
}

// mount asks for a cross-repository mount. 201: mounted; 202: the
// registry could not mount and opened an upload session (returned).
func (u *uploader) mount(ctx context.Context, desc ocispec.Descriptor, from name.Repository) (bool, *url.URL, error) {
	q := url.Values{"mount": {desc.Digest.String()}, "from": {from.RepositoryStr()}}
	loc, err := u.startUpload(ctx, q.Encode())
	if err == errMounted {
		return true, nil, nil
	}
	return false, loc, err
}

const errMounted = constErr("mounted")

// startUpload POSTs to the uploads endpoint; query carries a mount request.
func (u *uploader) startUpload(ctx context.Context, query string) (*url.URL, error) {
	target := endpoint(u.repo, "blobs", "uploads/")
	if query != "" {
		target += "?" + query
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, http.NoBody)
	if err != nil {
		return nil, err
	}
	resp, err := u.do(req)
	if err != nil {
		return nil, classify(err, "start upload to "+u.repo.Name())
	}
	drain(resp)
	if query != "" && resp.StatusCode == http.StatusCreated {
		return nil, errMounted
	}
	if err := checkResponse(resp, "start upload to "+u.repo.Name(), http.StatusAccepted); err != nil {
		return nil, err
	}
	return location(resp)
}

// manifest PUTs the manifest under ident (a tag or its digest).
func (u *uploader) manifest(ctx context.Context, ident, mt string, body []byte, dgst digest.Digest) error {
	subject := repoName(u.repo) + sepFor(ident) + ident
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, endpoint(u.repo, "manifests", ident), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", mt)
	resp, err := u.do(req)
	if err != nil {
		return classify(err, "put manifest "+subject)
	}
	drain(resp)
	if err := checkResponse(resp, "put manifest "+subject, http.StatusCreated, http.StatusOK, http.StatusAccepted); err != nil {
		return err
	}
	if h := digest.Digest(resp.Header.Get("Docker-Content-Digest")); h != "" && h.Algorithm() == dgst.Algorithm() && h != dgst {
		return fmt.Errorf("put manifest %s: %w: registry stored %s, sent %s", subject, ErrVerify, h, dgst)
	}
	return nil
}

// location resolves a response's Location (often relative) against the
// request that got it.
func location(resp *http.Response) (*url.URL, error) {
	l := resp.Header.Get("Location")
	if l == "" {
		return nil, fmt.Errorf("registry answered %d without a Location", resp.StatusCode)
	}
	return resp.Request.URL.Parse(l)
}

// drain reads a little of the body so that the connection can be reused,
// and closes it. The body is kept readable for checkResponse by a buffer.
func drain(resp *http.Response) {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
}

// countingReader reports bytes read, at most every 512 KiB and at EOF, so
// progress callbacks do not dominate a fast upload.
type countingReader struct {
	r      io.Reader
	n      int64
	last   int64
	report func(int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.n-c.last >= 512<<10 || (err == io.EOF && c.n != c.last) {
		c.last = c.n
		c.report(c.n)
	}
	return n, err
}
