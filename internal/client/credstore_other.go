//go:build !unix

package client

import "os"

// lockConfigDir: no flock here; internal/registry does without as well.
func lockConfigDir(dir string) (func(), error) {
	return func() {}, os.MkdirAll(dir, 0o700)
}
