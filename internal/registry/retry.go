package registry

import (
	"errors"
	"io"
	"net"
	"net/http"
	"syscall"
	"time"
)

// retryTransport retries a request that failed in a way that says nothing
// about the request itself: a reset or refused connection, or a 502/503/504
// from a proxy or an overloaded registry. Only requests that can be sent
// again are retried: those without a body or with GetBody (manifests);
// streamed blob uploads are not, their caller restarts the upload.
type retryTransport struct {
	inner   http.RoundTripper
	backoff []time.Duration
}

var defaultBackoff = []time.Duration{200 * time.Millisecond, time.Second, 3 * time.Second}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	replayable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	for attempt := 0; ; attempt++ {
		resp, err := t.inner.RoundTrip(req)
		if !replayable || attempt >= len(t.backoff) || !retryable(resp, err) {
			return resp, err
		}
		if resp != nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
		}
		select {
		case <-req.Context().Done():
			return nil, req.Context().Err()
		case <-time.After(t.backoff[attempt]):
		}
		if req.GetBody != nil {
			body, gerr := req.GetBody()
			if gerr != nil {
				return nil, gerr
			}
			req = req.Clone(req.Context())
			req.Body = body
		}
	}
}

func retryable(resp *http.Response, err error) bool {
	if err != nil {
		var ne net.Error
		return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
			errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || (errors.As(err, &ne) && ne.Timeout())
	}
	switch resp.StatusCode {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}
