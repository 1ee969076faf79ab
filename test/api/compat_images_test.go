//go:build linux

package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestCompatImagesUntil: `docker images --filter until=…` against berthd,
// `berth --host` and the in-process `berth` give the same answers for
// Docker's time forms (a duration before now, Unix seconds, RFC 3339),
// with an image committed now beside the older busybox fixture.
func TestCompatImagesUntil(t *testing.T) {
	d, docker := dockerAgainstBerthd(t)
	must := dockerMust(t, d, docker)
	must("create", "--name", "untilsrc", "busybox", "true")
	must("commit", "untilsrc", "fresh:1")
	old, err := time.Parse(time.RFC3339Nano, must("image", "inspect", "-f", "{{.Created}}", "busybox"))
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(old) < time.Hour {
		t.Fatalf("the busybox fixture was created %s: too recent to tell apart from a fresh image", old)
	}
	clis := map[string]func(args ...string) (string, string, int){
		"docker": func(args ...string) (string, string, int) { return docker("", args...) },
		"berth --host": func(args ...string) (string, string, int) {
			return d.run(nil, args...)
		},
		"berth": func(args ...string) (string, string, int) {
			return d.local(nil, args...)
		},
	}
	tests := []struct {
		name, until string
		want        []string
	}{
		{"duration", "10m", []string{"busybox:latest"}},
		{"duration with hours", "1h30m", []string{"busybox:latest"}},
		{"rfc3339 of busybox", old.Format(time.RFC3339Nano), []string{"busybox:latest"}},
		{"unix seconds before busybox", strconv.FormatInt(old.Unix()-1, 10), nil},
		{"unix seconds ahead", strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10), []string{"busybox:latest", "fresh:1"}},
		{"date ahead", time.Now().AddDate(0, 0, 2).Format("2006-01-02"), []string{"busybox:latest", "fresh:1"}},
	}
	for cli, run := range clis {
		for _, tt := range tests {
			t.Run(cli+"/"+tt.name, func(t *testing.T) {
				out, errOut, code := run("images", "--filter", "until="+tt.until, "--format", "{{.Repository}}:{{.Tag}}")
				if code != 0 {
					t.Fatalf("exit %d: %s%s", code, out, errOut)
				}
				got := strings.Fields(out)
				slices.Sort(got)
				if !slices.Equal(got, tt.want) {
					t.Errorf("images until=%s: %v, want %v", tt.until, got, tt.want)
				}
			})
		}
		t.Run(cli+"/refused", func(t *testing.T) {
			out, errOut, code := run("images", "--filter", "until=yesterday")
			if code == 0 || !strings.Contains(errOut, `failed to parse value as time or duration: "yesterday"`) {
				t.Errorf("exit %d: %s%s", code, out, errOut)
			}
		})
	}
	// The filter travels to berthd (docker's CLI filters nothing itself).
	t.Run("raw", func(t *testing.T) {
		for _, tc := range []struct {
			filters string
			status  int
			want    []string
		}{
			{`{"until":{"10m":true}}`, http.StatusOK, []string{"busybox:latest"}},
			{`{"until":{"10m":true,"20m":true}}`, http.StatusBadRequest, nil},
			{`{"dangling":{"false":true},"reference":{"fresh":true}}`, http.StatusOK, []string{"fresh:1"}},
			{`{"colour":{"red":true}}`, http.StatusBadRequest, nil},
		} {
			code, body := compatGet(t, d, "/v1.44/images/json?filters="+url.QueryEscape(tc.filters))
			if code != tc.status {
				t.Errorf("filters %s: %d %s, want %d", tc.filters, code, body, tc.status)
				continue
			}
			if code != http.StatusOK {
				continue
			}
			var list []struct{ RepoTags []string }
			if err := json.Unmarshal([]byte(body), &list); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range list {
				got = append(got, s.RepoTags...)
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("filters %s: %v, want %v", tc.filters, got, tc.want)
			}
		}
	})
}

// TestCompatImageVirtualSize: dockerd fills VirtualSize with Size for
// clients before API 1.44 and omits it from 1.44 on, in the list and in
// inspect.
func TestCompatImageVirtualSize(t *testing.T) {
	d := startDaemon(t)
	d.loadBusybox()
	for _, tc := range []struct {
		version string
		want    bool
	}{{"1.41", true}, {"1.43", true}, {"1.44", false}} {
		t.Run(tc.version, func(t *testing.T) {
			check := func(what string, doc map[string]any) {
				t.Helper()
				size, _ := doc["Size"].(float64)
				if size <= 0 {
					t.Fatalf("%s: Size %v", what, doc["Size"])
				}
				vs, has := doc["VirtualSize"]
				switch {
				case tc.want && vs != size:
					t.Errorf("%s: VirtualSize %v, want Size %v", what, vs, size)
				case !tc.want && has:
					t.Errorf("%s: VirtualSize %v present at %s", what, vs, tc.version)
				}
			}
			code, body := compatGet(t, d, "/v"+tc.version+"/images/json")
			var list []map[string]any
			if err := json.Unmarshal([]byte(body), &list); code != http.StatusOK || err != nil || len(list) != 1 {
				t.Fatalf("list: %d %s (%v)", code, body, err)
			}
			check("list", list[0])
			code, body = compatGet(t, d, "/v"+tc.version+"/images/busybox/json")
			var doc map[string]any
			if err := json.Unmarshal([]byte(body), &doc); code != http.StatusOK || err != nil {
				t.Fatalf("inspect: %d %s (%v)", code, body, err)
			}
			check("inspect", doc)
		})
	}
}

// compatGet GETs path from berthd and returns the status and body.
func compatGet(t *testing.T, d *daemon, path string) (int, string) {
	t.Helper()
	resp, err := d.http().Get("http://berth" + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}
