package client

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"time"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/build"
	"github.com/berth-dev/berth/internal/errdefs"
	securejoin "github.com/cyphar/filepath-securejoin"
	buildtypes "github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/jsonstream"
)

// Build sends the context to the daemon as Docker's CLI does for its
// classic builder (POST /build): a tar of the context directory or the
// given tar, with a Dockerfile from elsewhere added under a random name
// (and its ignore file beside it), and the options as query parameters. The daemon's {"stream": …}
// messages go to opts.Progress.
func (c *Client) Build(ctx context.Context, opts build.Options) (build.Result, error) {
	if len(opts.Secrets) > 0 {
		return build.Result{}, fmt.Errorf("build secrets over --host (they need a BuildKit session): %w", errdefs.ErrNotSupported)
	}
	q := url.Values{}
	for _, t := range opts.Tags {
		q.Add("t", t)
	}
	if opts.Target != "" {
		q.Set("target", opts.Target)
	}
	if opts.Platform != "" {
		q.Set("platform", opts.Platform)
	}
	if opts.NoCache {
		q.Set("nocache", "1")
	}
	if opts.Pull {
		q.Set("pull", "1")
	}
	if opts.Progress == nil {
		q.Set("q", "1")
	}
	if len(opts.BuildArgs) > 0 {
		b, _ := json.Marshal(opts.BuildArgs)
		q.Set("buildargs", string(b))
	}
	if len(opts.Labels) > 0 {
		b, _ := json.Marshal(opts.Labels)
		q.Set("labels", string(b))
	}
	dockerfile := opts.Dockerfile
	if opts.DockerfileContent != nil {
		dockerfile = ".dockerfile." + randomHex(10)
	}
	if dockerfile != "" {
		q.Set("dockerfile", dockerfile)
	}

	h, err := configHeader(ctx)
	if err != nil {
		return build.Result{}, err
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeContext(ctx, pw, opts, dockerfile)) }()
	defer pr.Close()
	resp, err := c.doHeader(ctx, http.MethodPost, "/build", q, pr, "application/x-tar", h)
	if err != nil {
		return build.Result{}, err
	}
	defer resp.Body.Close()
	var res build.Result
	dec := json.NewDecoder(resp.Body)
	for {
		var m jsonstream.Message
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return build.Result{}, fmt.Errorf("build progress stream: %w", err)
		}
		switch {
		case m.Error != nil:
			return build.Result{}, statusError(m.Error.Code, m.Error.Message)
		case m.Aux != nil:
			var r buildtypes.Result
			if err := json.Unmarshal(*m.Aux, &r); err == nil && r.ID != "" {
				res.ID = r.ID
			}
		case m.Stream != "" && opts.Progress != nil:
			_, _ = io.WriteString(opts.Progress, m.Stream)
		}
	}
	if res.ID == "" {
		return build.Result{}, fmt.Errorf("build: the daemon's answer ended without an image ID")
	}
	res.Names = opts.Tags
	return res, nil
}

// writeContext writes the build context tar: the context directory's tree
// or the caller's tar, and, for a Dockerfile given by content, that
// Dockerfile under the name dockerfile with its ignore file beside it.
func writeContext(ctx context.Context, w io.Writer, opts build.Options, dockerfile string) error {
	if opts.DockerfileContent == nil {
		return writeContextTree(ctx, w, opts)
	}
	tw := tar.NewWriter(w)
	if err := writeTarFile(tw, dockerfile, opts.DockerfileContent); err != nil {
		return err
	}
	// The daemon reads the Dockerfile from the context, so it applies the
	// ignore file of a Dockerfile in the context: NAME.dockerignore beside
	// it, else the context's .dockerignore (internal/build's rule). That
	// NAME.dockerignore is sent here, with the Dockerfile's own ignore
	// file given by the caller or else the context's .dockerignore, plus
	// the two injected names, so that the daemon excludes what a local
	// build excludes and neither file shows to COPY (Docker's CLI appends
	// its injected name to .dockerignore for the same reason).
	ignore := opts.DockerignoreContent
	if ignore == nil && opts.ContextTar != nil {
		// The context's .dockerignore is known only once its tar has
		// gone by: the ignore file goes last.
		if ignore, err := copyContextTar(tw, opts.ContextTar); err != nil {
			return err
		} else if err := writeTarFile(tw, dockerfile+".dockerignore", ignoreInjected(ignore, dockerfile)); err != nil {
			return err
		}
		return tw.Close()
	}
	if ignore == nil && opts.ContextDir != "" {
		var err error
		if ignore, err = readContextDockerignore(opts.ContextDir); err != nil {
			return err
		}
	}
	if err := writeTarFile(tw, dockerfile+".dockerignore", ignoreInjected(ignore, dockerfile)); err != nil {
		return err
	}
	if opts.ContextDir == "" && opts.ContextTar == nil {
		return tw.Close()
	}
	// Flush, not Close: the rest of the stream carries the trailer.
	if err := tw.Flush(); err != nil {
		return err
	}
	return writeContextTree(ctx, w, opts)
}

// writeContextTree writes the context directory's tree or the caller's
// tar, decompressed so that it can follow entries already written.
func writeContextTree(ctx context.Context, w io.Writer, opts build.Options) error {
	switch {
	case opts.ContextDir != "":
		if err := archive.Tar(ctx, w, opts.ContextDir, archive.TarOptions{}); err != nil {
			return fmt.Errorf("send build context %s: %w", opts.ContextDir, err)
		}
	case opts.ContextTar != nil:
		rc, _, err := archive.Decompress(opts.ContextTar)
		if err != nil {
			return fmt.Errorf("send build context: %w", err)
		}
		defer rc.Close()
		if _, err := io.Copy(w, rc); err != nil {
			return fmt.Errorf("send build context: %w", err)
		}
	default:
		return tar.NewWriter(w).Close()
	}
	return nil
}

// copyContextTar copies the entries of the caller's (possibly compressed)
// context tar to tw and returns its .dockerignore, nil if it has none.
func copyContextTar(tw *tar.Writer, r io.Reader) ([]byte, error) {
	rc, _, err := archive.Decompress(r)
	if err != nil {
		return nil, fmt.Errorf("send build context: %w", err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	var ignore []byte
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return ignore, nil
		}
		if err != nil {
			return nil, fmt.Errorf("send build context: %w", err)
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("send build context: %w", err)
		}
		isIgnore := hdr.Typeflag == tar.TypeReg && path.Clean("/"+hdr.Name) == "/.dockerignore"
		var body io.Reader = tr
		var buf bytes.Buffer
		if isIgnore {
			body = io.TeeReader(tr, &buf)
		}
		if _, err := io.Copy(tw, body); err != nil {
			return nil, fmt.Errorf("send build context: %w", err)
		}
		if isIgnore {
			ignore = buf.Bytes()
		}
	}
}

// readContextDockerignore reads dir's .dockerignore as the daemon will
// find it in the unpacked context (a symlink resolved inside it).
func readContextDockerignore(dir string) ([]byte, error) {
	p, err := securejoin.SecureJoin(dir, ".dockerignore")
	if err != nil {
		return nil, nil
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	return b, nil
}

// ignoreInjected is ignore with the injected Dockerfile and its ignore
// file excluded; last, so no pattern before it re-includes them.
func ignoreInjected(ignore []byte, dockerfile string) []byte {
	b := bytes.Clone(ignore)
	return append(b, "\n"+dockerfile+"\n"+dockerfile+".dockerignore\n"...)
}

func writeTarFile(tw *tar.Writer, name string, content []byte) error {
	hdr := &tar.Header{Name: name, Mode: 0o600, Size: int64(len(content)), ModTime: time.Now(), Typeflag: tar.TypeReg}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err := tw.Write(content)
	return err
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// BuilderPrune is POST /build/prune with the filters (see
// engine.BuilderPrune).
func (c *Client) BuilderPrune(ctx context.Context, filters map[string][]string) (int64, error) {
	q := url.Values{}
	if len(filters) > 0 {
		q.Set("filters", filtersParam(filters))
	}
	var rep buildtypes.CachePruneReport
	if err := c.doJSON(ctx, http.MethodPost, "/build/prune", q, nil, &rep); err != nil {
		return 0, err
	}
	return int64(rep.SpaceReclaimed), nil
}
