package client

import (
	"archive/tar"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/build"
	"github.com/berth-dev/berth/internal/errdefs"
	buildtypes "github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/jsonstream"
)

// Build sends the context to the daemon as Docker's CLI does for its
// classic builder (POST /build): a tar of the context directory or the
// given tar, with a Dockerfile from elsewhere added under a random name,
// and the options as query parameters. The daemon's {"stream": …}
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

	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeContext(ctx, pw, opts, dockerfile)) }()
	defer pr.Close()
	resp, err := c.do(ctx, http.MethodPost, "/build", q, pr, "application/x-tar")
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

// writeContext writes the build context tar: the Dockerfile given by
// content first (the daemon reads it under the name dockerfile), then the
// context directory's tree or the caller's tar, decompressed so that the
// two concatenate into one tar stream.
func writeContext(ctx context.Context, w io.Writer, opts build.Options, dockerfile string) error {
	tw := tar.NewWriter(w)
	if opts.DockerfileContent != nil {
		hdr := &tar.Header{Name: dockerfile, Mode: 0o600, Size: int64(len(opts.DockerfileContent)), ModTime: time.Now(), Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := tw.Write(opts.DockerfileContent); err != nil {
			return err
		}
		// Flush, not Close: the rest of the stream carries the trailer.
		if err := tw.Flush(); err != nil {
			return err
		}
	}
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
		return tw.Close()
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// BuilderPrune empties the daemon's build cache (POST /build/prune).
func (c *Client) BuilderPrune(ctx context.Context) (int64, error) {
	var rep buildtypes.CachePruneReport
	if err := c.doJSON(ctx, http.MethodPost, "/build/prune", nil, nil, &rep); err != nil {
		return 0, err
	}
	return int64(rep.SpaceReclaimed), nil
}
