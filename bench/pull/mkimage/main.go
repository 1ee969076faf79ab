// Command mkimage builds (or finds cached) the multi-layer Debian test image
// (internal/testutil.DebianImage) as an OCI layout and prints, as JSON, where
// it is and what it holds: the pull benchmark's input.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/berth-dev/berth/internal/testutil"
)

func main() {
	l, err := testutil.DebianImage()
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
	var compressed int64
	for _, d := range l.Layers {
		compressed += d.Size
	}
	out := struct {
		Dir        string `json:"dir"`
		Tag        string `json:"tag"`
		Manifest   string `json:"manifest"`
		Layers     int    `json:"layers"`
		Compressed int64  `json:"compressed"`
		Unpacked   int64  `json:"unpacked"`
	}{l.Dir, testutil.LayoutTag, l.Manifest.Digest.String(), len(l.Layers), compressed, l.UnpackedSize}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}
