package imagearchive

import (
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
)

const testDigest = "sha256:0627054f257b5bbc96d25def625f4c0ef54aa96c44184ad1d9d9e175f241d012"

func TestNormalizeName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"busybox", "docker.io/library/busybox:latest"},
		{"busybox:1.36", "docker.io/library/busybox:1.36"},
		{"localhost/app:1", "localhost/app:1"},
		{"127.0.0.1:5000/a/b", "127.0.0.1:5000/a/b:latest"},
		{"busybox@" + testDigest, "docker.io/library/busybox@" + testDigest},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := normalizeName(tt.in)
			if err != nil || got != tt.want {
				t.Errorf("normalizeName(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
	if _, err := normalizeName("Not/Valid"); !errdefs.IsInvalidArgument(err) {
		t.Errorf("normalizeName of an invalid name: %v, want an invalid-argument error", err)
	}
}

func TestTagged(t *testing.T) {
	tests := []struct {
		in                  string
		familiar, repo, tag string
		ok                  bool
	}{
		{"docker.io/library/busybox:latest", "busybox:latest", "busybox", "latest", true},
		{"busybox", "busybox:latest", "busybox", "latest", true},
		{"docker.io/user/app:v1", "user/app:v1", "user/app", "v1", true},
		{"127.0.0.1:5000/app:2", "127.0.0.1:5000/app:2", "127.0.0.1:5000/app", "2", true},
		{"busybox:1@" + testDigest, "busybox:1", "busybox", "1", true},
		{"busybox@" + testDigest, "", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			familiar, repo, tag, ok, err := tagged(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if familiar != tt.familiar || repo != tt.repo || tag != tt.tag || ok != tt.ok {
				t.Errorf("tagged(%q) = %q %q %q %v; want %q %q %q %v", tt.in, familiar, repo, tag, ok, tt.familiar, tt.repo, tt.tag, tt.ok)
			}
		})
	}
}
