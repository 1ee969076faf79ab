package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// cuttingProxy forwards loopback TCP to a registry and resets a
// connection once limit bytes of responses have gone through it, cuts
// times: a network that drops a download midway.
type cuttingProxy struct {
	ln     net.Listener
	target string
	limit  int64
	cuts   atomic.Int64 // cuts left
	cut    atomic.Int64 // connections cut so far
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  []net.Conn // closed at the end: idle keep-alives would linger
}

func startCuttingProxy(t *testing.T, target string, limit int64, cuts int) *cuttingProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cuttingProxy{ln: ln, target: target, limit: limit}
	p.cuts.Store(int64(cuts))
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *cuttingProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.forward(c.(*net.TCPConn))
		}()
	}
}

func (p *cuttingProxy) forward(c *net.TCPConn) {
	defer c.Close()
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer s.Close()
	p.mu.Lock()
	p.conns = append(p.conns, c, s)
	p.mu.Unlock()
	go func() { _, _ = io.Copy(s, c); s.(*net.TCPConn).CloseWrite() }()
	if n, _ := io.CopyN(c, s, p.limit); n < p.limit {
		return
	}
	if p.cuts.Add(-1) >= 0 {
		p.cut.Add(1)
		_ = c.SetLinger(0) // a reset, as a dropped connection looks
		return
	}
	_, _ = io.Copy(c, s)
}

// A blob download that loses its connection twice midway resumes from the
// byte it had reached (a Range GET to the real registry) and arrives whole.
func TestFetchResumesCutConnections(t *testing.T) {
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{Auth: "none"})
	ctx := context.Background()
	c := newClient(t)
	store := newBlobStore()
	big := randomLayer(t, 3<<20)
	img := buildImage(t, store, "amd64", [][]byte{big})
	if _, err := c.Push(ctx, reg.Host+"/berth/resume:v1", store, img.PushImage, nil); err != nil {
		t.Fatal(err)
	}
	saved := resumeBackoff
	resumeBackoff = []time.Duration{time.Millisecond, time.Millisecond, time.Millisecond}
	t.Cleanup(func() { resumeBackoff = saved })

	tests := []struct {
		name    string
		cuts    int
		wantErr bool
	}{
		{"two cuts", 2, false},
		{"more cuts than resumes", 10, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Half a MiB per connection: the 3 MiB blob needs six
			// connections without cuts, more than the resumes allowed.
			p := startCuttingProxy(t, reg.Host, 512<<10, tc.cuts)
			f := newClient(t).Fetcher(p.ln.Addr().String() + "/berth/resume")
			rc, err := f.Fetch(ctx, img.Layers[0])
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			got, err := io.ReadAll(rc)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("read the blob through %d cuts, want an error after %d resumes", tc.cuts, len(resumeBackoff))
				}
				if !strings.Contains(err.Error(), "reset") {
					t.Errorf("error %q does not name the dropped connection", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, big) {
				t.Fatalf("got %d bytes, not the blob's %d", len(got), len(big))
			}
			if n := p.cut.Load(); n != int64(tc.cuts) {
				t.Errorf("%d connections cut, want %d", n, tc.cuts)
			}
		})
	}
}

// A registry that ignores Range answers a resume with the whole blob:
// the bytes already read are skipped, and the result is still exact.
func TestFetchResumeWithoutRangeSupport(t *testing.T) {
	blob := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(blob), Size: int64(len(blob))}
	var gets atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/" {
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(blob)))
		if gets.Add(1) == 1 {
			// The first answer stops after a third of the blob.
			w.Write(blob[:len(blob)/3])
			hj, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				hj.Close()
			}
			return
		}
		w.Write(blob) // Range ignored
	}))
	defer srv.Close()
	saved := resumeBackoff
	resumeBackoff = []time.Duration{time.Millisecond}
	t.Cleanup(func() { resumeBackoff = saved })

	f := newClient(t).Fetcher(strings.TrimPrefix(srv.URL, "http://") + "/x")
	got := readAll(t, f, desc)
	if !bytes.Equal(got, blob) {
		t.Fatalf("got %d bytes, want the %d of the blob", len(got), len(blob))
	}
	if n := gets.Load(); n != 2 {
		t.Errorf("%d GETs, want 2", n)
	}
}

// A cancelled pull does not resume.
func TestResumerStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	refetched := false
	r := &resumer{ctx: ctx, body: io.NopCloser(errReader{io.ErrUnexpectedEOF}), size: 10, backoff: []time.Duration{0},
		refetch: func(context.Context, int64) (*http.Response, error) { refetched = true; return nil, errors.New("no") }}
	if _, err := r.Read(make([]byte, 4)); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("read = %v, want the cut's error", err)
	}
	if refetched {
		t.Error("resumed a cancelled download")
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
