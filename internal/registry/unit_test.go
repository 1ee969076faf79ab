package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestNormalize(t *testing.T) {
	for _, tc := range []struct{ in, norm, familiar string }{
		{"busybox", "docker.io/library/busybox:latest", "busybox:latest"},
		{"busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"},
		{"library/busybox", "docker.io/library/busybox:latest", "busybox:latest"},
		{"docker.io/library/busybox:latest", "docker.io/library/busybox:latest", "busybox:latest"},
		{"index.docker.io/user/app", "docker.io/user/app:latest", "user/app:latest"},
		{"user/app:v2", "docker.io/user/app:v2", "user/app:v2"},
		{"127.0.0.1:5000/x:tag", "127.0.0.1:5000/x:tag", "127.0.0.1:5000/x:tag"},
		{"localhost:5000/a/b", "localhost:5000/a/b:latest", "localhost:5000/a/b:latest"},
		{"ghcr.io/o/r:1", "ghcr.io/o/r:1", "ghcr.io/o/r:1"},
		{"busybox@sha256:" + strings.Repeat("a", 64), "docker.io/library/busybox@sha256:" + strings.Repeat("a", 64), "busybox@sha256:" + strings.Repeat("a", 64)},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := Normalize(tc.in)
			if err != nil || got != tc.norm {
				t.Errorf("Normalize = %q, %v; want %q", got, err, tc.norm)
			}
			if got := FamiliarName(tc.in); got != tc.familiar {
				t.Errorf("FamiliarName = %q, want %q", got, tc.familiar)
			}
		})
	}
	for _, bad := range []string{"", "Busybox", "a b", "x:-bad-", "busybox@sha256:12"} {
		if _, err := Normalize(bad); !errdefs.IsInvalidArgument(err) {
			t.Errorf("Normalize(%q) = %v, want ErrInvalidArgument", bad, err)
		}
	}
}

func TestAuthKey(t *testing.T) {
	for _, tc := range []struct{ server, key string }{
		{"", dockerHubAuthKey},
		{"docker.io", dockerHubAuthKey},
		{"index.docker.io", dockerHubAuthKey},
		{"https://index.docker.io/v1/", dockerHubAuthKey},
		{"registry-1.docker.io", dockerHubAuthKey},
		{"127.0.0.1:5000", "127.0.0.1:5000"},
		{"https://ghcr.io", "ghcr.io"},
		{"http://localhost:5000/v2/", "localhost:5000"},
	} {
		if got := authKey(tc.server); got != tc.key {
			t.Errorf("authKey(%q) = %q, want %q", tc.server, got, tc.key)
		}
	}
}

func TestMatchPlatform(t *testing.T) {
	desc := func(arch, variant string) ocispec.Descriptor {
		return ocispec.Descriptor{Digest: digest.FromString(arch + variant), Platform: &ocispec.Platform{OS: "linux", Architecture: arch, Variant: variant}}
	}
	attest := ocispec.Descriptor{Digest: digest.FromString("att"), Platform: &ocispec.Platform{OS: "unknown", Architecture: "unknown"}}
	list := []ocispec.Descriptor{attest, desc("amd64", ""), desc("arm", "v5"), desc("arm", "v6"), desc("arm64", ""), {Digest: digest.FromString("noplat")}}
	for _, tc := range []struct {
		name string
		want ocispec.Platform
		got  string // arch+variant of the pick, "" = none
	}{
		{"amd64", ocispec.Platform{OS: "linux", Architecture: "amd64"}, "amd64"},
		{"x86_64 alias", ocispec.Platform{OS: "linux", Architecture: "x86_64"}, "amd64"},
		{"arm64 v8 takes variantless", ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}, "arm64"},
		{"arm v7 takes the closest lower", ocispec.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}, "armv6"},
		{"arm v5 exact", ocispec.Platform{OS: "linux", Architecture: "arm", Variant: "v5"}, "armv5"},
		{"arm v4 none", ocispec.Platform{OS: "linux", Architecture: "arm", Variant: "v4"}, ""},
		{"windows none", ocispec.Platform{OS: "windows", Architecture: "amd64"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, ok := matchPlatform(list, tc.want)
			switch {
			case tc.got == "" && ok:
				t.Errorf("picked %+v, want none", d.Platform)
			case tc.got != "" && (!ok || d.Digest != digest.FromString(tc.got)):
				t.Errorf("picked %+v (ok=%v), want %s", d.Platform, ok, tc.got)
			}
		})
	}
}

// TestHTTPGuard: plain HTTP to a registry that is neither loopback nor
// insecure is refused before any connection is made.
func TestHTTPGuard(t *testing.T) {
	c := New(Options{Insecure: []string{"insecure.test:5000"}, Transport: failTransport{t}})
	for _, tc := range []struct {
		host  string
		allow bool
	}{
		{"localhost:5000", true},
		{"127.0.0.1:5000", true},
		{"127.1.2.3", true},
		{"[::1]:5000", true},
		{"insecure.test:5000", true},
		{"10.1.2.3:5000", false},
		{"registry.test", false},
	} {
		if got := c.allowHTTP(tc.host); got != tc.allow {
			t.Errorf("allowHTTP(%s) = %v, want %v", tc.host, got, tc.allow)
		}
		if tc.allow {
			continue
		}
		g := &httpGuard{inner: failTransport{t}, host: tc.host, allowHTTP: false}
		req, _ := http.NewRequest(http.MethodGet, "http://"+tc.host+"/v2/", nil)
		if _, err := g.RoundTrip(req); err == nil || !strings.Contains(err.Error(), "refusing plain HTTP") {
			t.Errorf("%s: plain HTTP not refused: %v", tc.host, err)
		}
	}
}

type failTransport struct{ t *testing.T }

func (f failTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	f.t.Errorf("unexpected request to %s", r.URL)
	return nil, errors.New("no network in this test")
}

// TestFetchVerifies serves tampered content from a fake registry (the one
// thing a real registry will not do) and checks every way it is caught.
func TestFetchVerifies(t *testing.T) {
	good := []byte("the real layer bytes")
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(good), Size: int64(len(good))}
	for _, tc := range []struct {
		name    string
		body    []byte
		chunked bool // no Content-Length: the size check must happen while streaming
		want    string
		// deferred: the reader takes over the digest check (DeferDigest);
		// other bytes of the right size then read without error.
		deferred bool
	}{
		{"same size, other bytes", []byte("the fake layer bytes"), false, "digest mismatch", false},
		{"longer, announced", append(append([]byte{}, good...), "!!"...), false, "registry announces", false},
		{"longer, streamed", append(append([]byte{}, good...), "!!"...), true, "more than the", false},
		{"shorter", good[:5], true, "got 5 bytes", false},
		{"intact", good, true, "", false},
		{"digest deferred: other bytes pass", []byte("the fake layer bytes"), true, "", true},
		{"digest deferred: size still checked", append(append([]byte{}, good...), "!!"...), true, "more than the", true},
		{"digest deferred: shorter still caught", good[:5], true, "got 5 bytes", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/v2/" {
					return
				}
				if r.URL.Path != "/v2/x/blobs/"+desc.Digest.String() {
					http.NotFound(w, r)
					return
				}
				if !tc.chunked {
					w.Header().Set("Content-Length", fmt.Sprint(len(tc.body)))
				}
				w.Write(tc.body)
				if tc.chunked {
					w.(http.Flusher).Flush()
				}
			}))
			defer srv.Close()
			c := newClient(t)
			host := strings.TrimPrefix(srv.URL, "http://")
			rc, err := c.Fetcher(host+"/x").Fetch(context.Background(), desc)
			if err == nil {
				if tc.deferred {
					d, ok := rc.(interface{ DeferDigest() })
					if !ok {
						t.Fatalf("stream %T has no DeferDigest", rc)
					}
					d.DeferDigest()
				}
				var got []byte
				got, err = io.ReadAll(rc)
				rc.Close()
				if err == nil && string(got) != string(tc.body) {
					t.Fatalf("read %q, served %q", got, tc.body)
				}
				if err == nil && !tc.deferred && string(got) != string(good) {
					t.Fatalf("read %q without error", got)
				}
			}
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrVerify) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want ErrVerify mentioning %q", err, tc.want)
			}
		})
	}
}

func TestRetryTransport(t *testing.T) {
	for _, tc := range []struct {
		name      string
		failures  int
		body      io.Reader // nil: GET
		wantCalls int
		wantCode  int
	}{
		{"get recovers", 2, nil, 3, http.StatusOK},
		{"get gives up", 10, nil, 4, http.StatusServiceUnavailable},
		{"replayable body recovers", 1, strings.NewReader("manifest"), 2, http.StatusOK},
		{"streamed body is not retried", 1, io.MultiReader(strings.NewReader("blob")), 1, http.StatusServiceUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				calls++
				b, _ := io.ReadAll(r.Body)
				if tc.body != nil && len(b) == 0 {
					t.Error("retried request lost its body")
				}
				if calls <= tc.failures {
					w.WriteHeader(http.StatusServiceUnavailable)
				}
			}))
			defer srv.Close()
			method := http.MethodGet
			if tc.body != nil {
				method = http.MethodPut
			}
			req, _ := http.NewRequest(method, srv.URL, tc.body)
			rt := &retryTransport{inner: http.DefaultTransport, backoff: []time.Duration{time.Millisecond, time.Millisecond, time.Millisecond}}
			resp, err := rt.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.wantCode || calls != tc.wantCalls {
				t.Errorf("status %d after %d calls, want %d after %d", resp.StatusCode, calls, tc.wantCode, tc.wantCalls)
			}
		})
	}
}

func TestManifestType(t *testing.T) {
	for _, tc := range []struct{ name, contentType, body, want string }{
		{"field wins", "application/json", `{"schemaVersion":2,"mediaType":"` + MediaTypeDockerManifest + `"}`, MediaTypeDockerManifest},
		{"header when no field", ocispec.MediaTypeImageIndex + "; charset=utf-8", `{"schemaVersion":2,"manifests":[]}`, ocispec.MediaTypeImageIndex},
		{"shape: index", "", `{"schemaVersion":2,"manifests":[]}`, ocispec.MediaTypeImageIndex},
		{"shape: manifest", "application/json", `{"schemaVersion":2,"config":{},"layers":[]}`, ocispec.MediaTypeImageManifest},
		{"schema 1 by version", mediaTypeSchema1Signed, `{"schemaVersion":1,"name":"x"}`, mediaTypeSchema1},
		{"schema 1 by shape", "application/json", `{"fsLayers":[]}`, mediaTypeSchema1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := manifestType(tc.contentType, []byte(tc.body)); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestResolveRefuses serves manifests a real registry would not (tampered
// or schema 1) and checks Resolve's errors.
func TestResolveRefuses(t *testing.T) {
	good := []byte(`{"schemaVersion":2,"mediaType":"` + ocispec.MediaTypeImageManifest + `","config":{},"layers":[]}`)
	pinned := digest.FromBytes(good)
	for _, tc := range []struct {
		name, ref, body string
		want            error
		msg             string
	}{
		{"tampered by digest", "x@" + pinned.String(), `{"schemaVersion":2,"mediaType":"` + ocispec.MediaTypeImageManifest + `","config":{},"layers":[ ]}`, ErrVerify, "digest mismatch"},
		{"schema 1", "x:old", `{"schemaVersion":1,"name":"x","fsLayers":[]}`, errdefs.ErrNotSupported, "schema 1"},
		{"intact", "x@" + pinned.String(), string(good), nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/v2/" {
					return
				}
				w.Header().Set("Content-Type", "application/json")
				io.WriteString(w, tc.body)
			}))
			defer srv.Close()
			host := strings.TrimPrefix(srv.URL, "http://")
			_, err := newClient(t).Resolve(context.Background(), host+"/"+tc.ref, nil)
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %v, want %v mentioning %q", err, tc.want, tc.msg)
			}
		})
	}
}
