package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// resumer is a blob's response body that survives a connection cut short:
// when a read fails the way a dropped connection does (reset, early end,
// timeout) before the blob's last byte, it asks for the rest with a Range
// GET and goes on from there, as Docker retries a layer download. A blob
// is immutable (its digest names it), so the rest of a new response is the
// rest of the old one; the verifier above still counts and hashes every
// byte. A registry that ignores Range answers 200 with the whole blob: the
// bytes already read are skipped. Each resume waits a little longer
// (resumeBackoff); after the last one the read error stands.
type resumer struct {
	ctx     context.Context
	body    io.ReadCloser
	refetch func(ctx context.Context, from int64) (*http.Response, error)
	size    int64 // the blob's size (>= 0: only blobs of known size resume)
	n       int64 // bytes delivered so far
	tries   int
	backoff []time.Duration
}

var resumeBackoff = []time.Duration{100 * time.Millisecond, time.Second, 3 * time.Second, 5 * time.Second}

func (r *resumer) Read(p []byte) (int, error) {
	for {
		n, err := r.body.Read(p)
		r.n += int64(n)
		switch {
		case err == nil:
			return n, nil
		case err == io.EOF:
			// A clean end: the blob's end, or a registry that serves
			// a short blob, which the verifier reports as such.
			return n, err
		case !resumable(err) || r.n >= r.size || r.tries >= len(r.backoff) || r.ctx.Err() != nil:
			return n, err
		}
		if rerr := r.resume(err); rerr != nil {
			return n, rerr
		}
		if n > 0 {
			return n, nil
		}
	}
}

// resume replaces the body with the rest of the blob, from r.n on.
func (r *resumer) resume(cause error) error {
	delay := r.backoff[r.tries]
	r.tries++
	r.body.Close()
	r.body = http.NoBody // until the new one is in
	select {
	case <-r.ctx.Done():
		return r.ctx.Err()
	case <-time.After(delay):
	}
	resp, err := r.refetch(r.ctx, r.n)
	if err != nil {
		return fmt.Errorf("resume at byte %d after %v: %w", r.n, cause, err)
	}
	switch resp.StatusCode {
	case http.StatusPartialContent:
		if start, ok := rangeStart(resp.Header.Get("Content-Range")); !ok || start != r.n {
			resp.Body.Close()
			return fmt.Errorf("resume at byte %d after %v: %w: the registry sent range %q", r.n, cause, ErrVerify, resp.Header.Get("Content-Range"))
		}
	case http.StatusOK: // no Range support: skip what we have
		if _, err := io.CopyN(io.Discard, resp.Body, r.n); err != nil {
			resp.Body.Close()
			return fmt.Errorf("resume at byte %d after %v: skip: %w", r.n, cause, err)
		}
	default:
		resp.Body.Close()
		return fmt.Errorf("resume at byte %d after %v: registry answered %s", r.n, cause, resp.Status)
	}
	r.body = resp.Body
	return nil
}

func (r *resumer) Close() error { return r.body.Close() }

// resumable reports a read error that a dropped or stalled connection
// causes (the retryTransport's reasons: a reset, a body cut short, a
// timeout), not one of ours (a cancelled context).
func resumable(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	return retryable(nil, err)
}

// rangeStart parses the first byte of "bytes <first>-<last>/<size>".
func rangeStart(v string) (int64, bool) {
	v, ok := strings.CutPrefix(v, "bytes ")
	if !ok {
		return 0, false
	}
	first, _, ok := strings.Cut(v, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(first, 10, 64)
	return n, err == nil && n >= 0
}
