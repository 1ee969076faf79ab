//go:build linux

package image_test

import (
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/internal/testutil"
)

// layoutServer is a read-only registry (the pull half of the distribution
// API, plain HTTP on 127.0.0.1) that serves OCI layouts exactly as they are
// on disk. A real registry verifies what is pushed to it, so it can never
// serve a blob that contradicts its digest; this server can, which is how
// the wrong-digest and truncated images reach berth. It also throttles
// (to kill a pull mid-download) and counts blob downloads (to check that
// concurrent pulls fetch each blob once).
type layoutServer struct {
	Host    string
	repos   map[string]*testutil.ImageLayout // repository name → layout
	rate    atomic.Int64                     // bytes per second per blob response; 0 = unthrottled
	mu      sync.Mutex
	fetches map[digest.Digest]int // completed or started blob GETs
}

func serveLayouts(t *testing.T, repos map[string]*testutil.ImageLayout) *layoutServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &layoutServer{Host: ln.Addr().String(), repos: repos, fetches: map[digest.Digest]int{}}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return s
}

func (s *layoutServer) fetchCount(d digest.Digest) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fetches[d]
}

func (s *layoutServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, `{"errors":[{"code":"UNSUPPORTED"}]}`, http.StatusMethodNotAllowed)
		return
	}
	p := strings.TrimPrefix(r.URL.Path, "/v2/")
	if p == "" || p == r.URL.Path {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, "{}")
		return
	}
	notFound := func() { http.Error(w, `{"errors":[{"code":"NAME_UNKNOWN"}]}`, http.StatusNotFound) }
	for _, kind := range []string{"/manifests/", "/blobs/"} {
		i := strings.LastIndex(p, kind)
		if i < 0 {
			continue
		}
		l := s.repos[p[:i]]
		ref := p[i+len(kind):]
		if l == nil {
			notFound()
			return
		}
		if kind == "/manifests/" {
			if ref != testutil.LayoutTag && ref != l.Manifest.Digest.String() {
				notFound()
				return
			}
			w.Header().Set("Content-Type", l.Manifest.MediaType)
			s.serveBlob(w, r, l, l.Manifest.Digest, false)
			return
		}
		d, err := digest.Parse(ref)
		if err != nil {
			notFound()
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		s.serveBlob(w, r, l, d, true)
		return
	}
	notFound()
}

// serveBlob sends the layout's file for d as it is (whatever its digest),
// with the Docker-Content-Digest header claiming d.
func (s *layoutServer) serveBlob(w http.ResponseWriter, r *http.Request, l *testutil.ImageLayout, d digest.Digest, count bool) {
	f, err := os.Open(filepath.Join(l.Dir, "blobs", string(d.Algorithm()), d.Encoded()))
	if err != nil {
		http.Error(w, `{"errors":[{"code":"BLOB_UNKNOWN"}]}`, http.StatusNotFound)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Docker-Content-Digest", d.String())
	if r.Method == http.MethodHead {
		w.Header().Set("Content-Length", strconv.FormatInt(fi.Size(), 10))
		return
	}
	if count {
		s.mu.Lock()
		s.fetches[d]++
		s.mu.Unlock()
	}
	rate := s.rate.Load()
	if rate == 0 || r.Header.Get("Range") != "" {
		http.ServeContent(w, r, "", time.Time{}, f)
		return
	}
	w.Header().Set("Content-Length", strconv.FormatInt(fi.Size(), 10))
	// Throttle: 64 KiB at a time, paced to rate.
	buf := make([]byte, 64<<10)
	start := time.Now()
	var sent int64
	for {
		n, err := f.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			sent += int64(n)
			if ahead := time.Duration(sent*int64(time.Second)/rate) - time.Since(start); ahead > 0 {
				select {
				case <-time.After(ahead):
				case <-r.Context().Done():
					return
				}
			}
		}
		if err != nil {
			return
		}
	}
}
