package build

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestDockerignore(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"Dockerfile":                  "FROM scratch\n",
		".dockerignore":               "*.log\nbuild/\n!build/keep.txt\n",
		"sub/Dockerfile":              "FROM scratch\n",
		"sub/Dockerfile.dockerignore": "secret*\n",
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b := &Builder{Root: t.TempDir()}
	cases := []struct {
		name       string
		dockerfile string
		content    []byte // DockerfileContent: a Dockerfile from outside the context
		ignore     []byte // DockerignoreContent: its own ignore file
		excluded   map[string]bool
	}{
		{"context .dockerignore", "Dockerfile", nil, nil, map[string]bool{"a.log": true, "build/x": true, "build/keep.txt": false, "src/a.go": false, "secret.key": false}},
		// NAME.dockerignore beside the Dockerfile wins.
		{"NAME.dockerignore beside it", "sub/Dockerfile", nil, nil, map[string]bool{"a.log": false, "secret.key": true}},
		// A Dockerfile from outside the context: a same-named file in the
		// context is not its ignore file; the context's .dockerignore is.
		{"outside without its own", "sub/Dockerfile", []byte("FROM scratch\n"), nil, map[string]bool{"a.log": true, "secret.key": false}},
		{"outside with its own", "Dockerfile", []byte("FROM scratch\n"), []byte("*.key\n"), map[string]bool{"a.log": false, "secret.key": true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bc, df, _, err := b.openContext(context.Background(), Options{ContextDir: dir, Dockerfile: tc.dockerfile, DockerfileContent: tc.content, DockerignoreContent: tc.ignore}, func() (string, error) { return t.TempDir(), nil })
			if err != nil {
				t.Fatal(err)
			}
			defer bc.cleanup()
			if string(df) != "FROM scratch\n" {
				t.Errorf("Dockerfile = %q", df)
			}
			for p, want := range tc.excluded {
				if got := bc.excluded(p); got != want {
					t.Errorf("excluded(%s) = %v, want %v", p, got, want)
				}
			}
		})
	}
}

// TestCollectHashIgnoresMtime: the COPY checksum covers content, mode and
// names, never mtime.
func TestCollectHashIgnoresMtime(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "d"), 0o755)
	os.WriteFile(filepath.Join(dir, "d", "f"), []byte("one"), 0o644)
	bc := &buildContext{dir: dir, cleanup: func() {}}
	sum := func() string {
		h := sha256.New()
		if _, err := collect(dir, "d", true, bc, nil, false, h); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("%x", h.Sum(nil))
	}
	s1 := sum()
	later := time.Now().Add(time.Hour)
	os.Chtimes(filepath.Join(dir, "d", "f"), later, later)
	if s2 := sum(); s2 != s1 {
		t.Error("mtime changed the checksum")
	}
	os.WriteFile(filepath.Join(dir, "d", "f"), []byte("two"), 0o644)
	if s3 := sum(); s3 == s1 {
		t.Error("content change kept the checksum")
	}
	os.Chmod(filepath.Join(dir, "d", "f"), 0o755)
	s4 := sum()
	os.Chmod(filepath.Join(dir, "d", "f"), 0o644)
	if s4 == sum() {
		t.Error("mode change kept the checksum")
	}
}

func TestCollectStaysInContext(t *testing.T) {
	dir := t.TempDir()
	os.Symlink("/etc", filepath.Join(dir, "etc-link"))
	os.Symlink("../../../../../../..", filepath.Join(dir, "up"))
	bc := &buildContext{dir: dir, cleanup: func() {}}
	for _, src := range []string{"etc-link/passwd", "up/etc/passwd", "../../etc/passwd", "/etc/passwd"} {
		if _, err := collect(dir, src, true, bc, nil, false, sha256.New()); err == nil {
			t.Errorf("%s: read outside the context", src)
		}
	}
}

// TestNumericOwner: only "UID" and "UID:GID" skip the passwd/group lookup
// of a linked COPY's --chown.
func TestNumericOwner(t *testing.T) {
	for _, tc := range []struct {
		chown string
		want  bool
	}{
		{"1000", true}, {"1000:100", true}, {"1000:", false}, {"nobody", false},
		{"1000:users", false}, {"nobody:100", false}, {":100", false},
	} {
		if got := numericOwner(tc.chown); got != tc.want {
			t.Errorf("numericOwner(%q) = %v, want %v", tc.chown, got, tc.want)
		}
	}
}
