//go:build linux

package api_test

import (
	"encoding/binary"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	imagetypes "github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/system"
)

// TestDockerShape checks answers a Docker client relies on, byte for byte
// where Docker is exact: /_ping, /version negotiation, lists as JSON
// arrays, errors as {"message"} with errdefs' status codes.
func TestDockerShape(t *testing.T) {
	d := startDaemon(t)
	d.loadBusybox()
	hc := d.http()
	get := func(method, path string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, "http://berth"+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	tests := []struct {
		name, method, path string
		status             int
		check              func(t *testing.T, resp *http.Response, body []byte)
	}{
		{"ping", "GET", "/_ping", 200, func(t *testing.T, resp *http.Response, body []byte) {
			if string(body) != "OK" || resp.Header.Get("Api-Version") != "1.44" || resp.Header.Get("Ostype") != "linux" {
				t.Errorf("body %q, headers %v", body, resp.Header)
			}
		}},
		{"ping head", "HEAD", "/_ping", 200, func(t *testing.T, resp *http.Response, body []byte) {
			if len(body) != 0 || resp.Header.Get("Api-Version") == "" {
				t.Errorf("body %q, headers %v", body, resp.Header)
			}
		}},
		{"version", "GET", "/v1.43/version", 200, func(t *testing.T, _ *http.Response, body []byte) {
			var v system.VersionResponse
			if err := json.Unmarshal(body, &v); err != nil || v.APIVersion != "1.44" || v.MinAPIVersion != "1.24" || v.Os != "linux" {
				t.Errorf("version %s (%v)", body, err)
			}
		}},
		{"unversioned", "GET", "/version", 200, nil},
		{"old docker.io 20.10 client", "GET", "/v1.41/containers/json", 200, nil},
		{"too old", "GET", "/v1.12/version", 400, func(t *testing.T, _ *http.Response, body []byte) {
			if !strings.Contains(string(body), `"message":"client version 1.12 is too old`) {
				t.Errorf("body %s", body)
			}
		}},
		{"containers", "GET", "/v1.43/containers/json?all=1", 200, func(t *testing.T, _ *http.Response, body []byte) {
			var l []container.Summary
			if err := json.Unmarshal(body, &l); err != nil || strings.TrimSpace(string(body)) != "[]" {
				t.Errorf("want an empty JSON array, got %s (%v)", body, err)
			}
		}},
		{"images", "GET", "/v1.43/images/json", 200, func(t *testing.T, _ *http.Response, body []byte) {
			var l []imagetypes.Summary
			if err := json.Unmarshal(body, &l); err != nil || len(l) != 1 || len(l[0].RepoTags) == 0 || !strings.HasPrefix(l[0].ID, "sha256:") {
				t.Errorf("images %s (%v)", body, err)
			}
		}},
		{"image by name with slashes", "GET", "/v1.43/images/docker.io/library/busybox:latest/json", 200, func(t *testing.T, _ *http.Response, body []byte) {
			var in imagetypes.InspectResponse
			if err := json.Unmarshal(body, &in); err != nil || !strings.HasPrefix(in.ID, "sha256:") {
				t.Errorf("inspect %s (%v)", body, err)
			}
		}},
		{"no such container", "GET", "/v1.43/containers/nope/json", 404, func(t *testing.T, resp *http.Response, body []byte) {
			if strings.TrimSpace(string(body)) != `{"message":"No such container: nope"}` || resp.Header.Get("Content-Type") != "application/json" {
				t.Errorf("body %s, type %s", body, resp.Header.Get("Content-Type"))
			}
		}},
		{"no such image", "DELETE", "/v1.43/images/nope:1", 404, nil},
		{"bad create", "POST", "/v1.43/containers/create", 400, nil},
		{"info", "GET", "/v1.43/info", 200, func(t *testing.T, _ *http.Response, body []byte) {
			var in system.Info
			if err := json.Unmarshal(body, &in); err != nil || in.Images != 1 || in.DockerRootDir != d.root || in.OSType != "linux" {
				t.Errorf("info %s (%v)", body, err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := get(tc.method, tc.path)
			if resp.StatusCode != tc.status {
				t.Fatalf("%s %s: status %d, want %d: %s", tc.method, tc.path, resp.StatusCode, tc.status, body)
			}
			if tc.check != nil {
				tc.check(t, resp, body)
			}
		})
	}
}

// TestLogsStream checks the stdcopy framing of a non-tty container's logs.
func TestLogsStream(t *testing.T) {
	d := startDaemon(t)
	d.loadBusybox()
	d.ok("run", "--name", "framed", "busybox", "sh", "-c", "echo out; echo err >&2")
	resp, err := d.http().Get("http://berth/v1.43/containers/framed/logs?stdout=1&stderr=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/vnd.docker.multiplexed-stream" {
		t.Errorf("content type %q", ct)
	}
	b, _ := io.ReadAll(resp.Body)
	// Two frames, one per stream (their order is the pipes' race):
	// [stream, 0, 0, 0, big-endian length] + payload.
	frames := map[byte]string{}
	for len(b) >= 8 {
		n := int(binary.BigEndian.Uint32(b[4:8]))
		if b[1] != 0 || b[2] != 0 || b[3] != 0 || len(b) < 8+n {
			t.Fatalf("bad frame header % x", b[:8])
		}
		frames[b[0]] += string(b[8 : 8+n])
		b = b[8+n:]
	}
	if len(b) != 0 || frames[1] != "out\n" || frames[2] != "err\n" || len(frames) != 2 {
		t.Errorf("frames %q, rest %q", frames, b)
	}
}
