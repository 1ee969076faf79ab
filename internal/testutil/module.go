package testutil

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
)

// ModuleRoot is the directory holding berth's go.mod, found by walking up
// from this source file (tests run with their package directory as the
// working directory, which differs per package).
func ModuleRoot() (string, error) {
	// The source file's path is absolute unless the test binary was built
	// with -trimpath; fall back to the working directory then.
	_, file, _, ok := runtime.Caller(0)
	if !ok || !filepath.IsAbs(file) {
		wd, err := os.Getwd()
		if err != nil {
			return "", err
		}
		file = filepath.Join(wd, "x")
	}
	dir := filepath.Dir(file)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("testutil: go.mod not found above " + filepath.Dir(file))
		}
		dir = parent
	}
}
