package image

import (
	"context"
	"io"
	"sync"

	"github.com/berth-dev/berth/internal/content"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// earlyFetches are the downloads of the layers a pull starts with, begun as
// soon as the manifest is known: the config (whose diff IDs name the
// snapshots), the ledger and the snapshots' preparation come before a
// layer's first byte otherwise, and a registry answering from a cold disk
// takes its time over each request. An early download first takes the
// blob's ingest, as open would (two pulls of one image still download each
// blob once: the second finds the ingest taken and leaves the blob to the
// first), then sends the GET; open takes both instead of starting its own.
// Fetch closes whatever nobody took.
type earlyFetches struct {
	mu   sync.Mutex
	byID map[int]*earlyFetch
}

type earlyFetch struct {
	cancel context.CancelFunc // ends this GET, and its body's reads
	done   chan struct{}      // closed when the GET has returned, or was not sent
	w      *content.Writer    // the ingest, nil when the blob is not ours to fetch
	rc     io.ReadCloser
	err    error
}

// startEarly begins the downloads of layers which, in the background.
func (s *Store) startEarly(ctx context.Context, f Fetcher, layers []ocispec.Descriptor, which []int) *earlyFetches {
	e := &earlyFetches{byID: make(map[int]*earlyFetch, len(which))}
	for _, i := range which {
		fctx, cancel := context.WithCancel(ctx)
		ef := &earlyFetch{cancel: cancel, done: make(chan struct{})}
		e.byID[i] = ef
		go func(desc ocispec.Descriptor) {
			defer close(ef.done)
			w, err := s.cs.Writer(fctx, desc.Digest.String(), desc)
			if err != nil {
				return // stored meanwhile, or open will meet the error itself
			}
			ef.w = w
			ef.rc, ef.err = f.Fetch(fctx, desc)
		}(layers[i])
	}
	return e
}

// take returns layer i's early download: its ingest and the response (or
// the GET's error, the ingest then closed). ok is false when there is
// none: open goes its own way. The ingest and the response are the
// caller's to close.
func (e *earlyFetches) take(ctx context.Context, i int) (rc io.ReadCloser, w *content.Writer, ok bool, err error) {
	e.mu.Lock()
	ef := e.byID[i]
	delete(e.byID, i)
	e.mu.Unlock()
	if ef == nil {
		return nil, nil, false, nil
	}
	select {
	case <-ef.done:
	case <-ctx.Done():
		ef.close()
		return nil, nil, true, ctx.Err()
	}
	switch {
	case ef.w == nil:
		ef.cancel()
		return nil, nil, false, nil
	case ef.err != nil:
		ef.cancel()
		ef.w.Close()
		return nil, nil, true, ef.err
	}
	return cancelOnClose{ef.rc, ef.cancel}, ef.w, true, nil
}

// closeAll cancels and releases every download nobody took.
func (e *earlyFetches) closeAll() {
	e.mu.Lock()
	left := e.byID
	e.byID = nil
	e.mu.Unlock()
	for _, ef := range left {
		ef.close()
	}
}

// close cancels the download, waits for its GET to return (the cancel
// makes that prompt) and releases what it holds: the ingest is gone when
// Fetch returns, as it is after a download that failed its own way.
func (ef *earlyFetch) close() {
	ef.cancel()
	<-ef.done
	if ef.rc != nil {
		ef.rc.Close()
	}
	if ef.w != nil {
		ef.w.Close()
	}
}

// cancelOnClose ends an early GET's context with its body.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

// DeferDigest passes the request on to the fetched stream (see
// digestDeferrer).
func (c cancelOnClose) DeferDigest() {
	if d, ok := c.ReadCloser.(digestDeferrer); ok {
		d.DeferDigest()
	}
}
