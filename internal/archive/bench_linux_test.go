package archive

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/testutil"
)

// BenchmarkApply extracts the Debian fixture (about 160 MB, 9k entries, a
// real distribution layer) and, for reference, GNU tar on the same bytes.
// Each iteration writes into a fresh directory; removing it is not timed.
//
//	go test ./internal/archive -run '^$' -bench Apply -benchtime 5x
func BenchmarkApply(b *testing.B) {
	testutil.RequiresRoot(b)
	src, err := testutil.DebianRootfs()
	if err != nil {
		b.Skipf("debian fixture: %v", err)
	}
	var layer bytes.Buffer
	if err := Tar(context.Background(), &layer, src, TarOptions{}); err != nil {
		b.Fatal(err)
	}
	extractors := []struct {
		name string
		run  func(dir string) error
	}{
		{"berth", func(dir string) error {
			_, err := Apply(context.Background(), dir, bytes.NewReader(layer.Bytes()), ApplyOptions{})
			return err
		}},
		{"gnu-tar", func(dir string) error {
			cmd := exec.Command("tar", "-x", "--same-owner", "--same-permissions", "--xattrs", "--xattrs-include=*", "-C", dir)
			cmd.Stdin = bytes.NewReader(layer.Bytes())
			out, err := cmd.CombinedOutput()
			if err != nil {
				b.Logf("%s", out)
			}
			return err
		}},
	}
	// tmpfs takes the disk out of the measure and leaves the CPU cost.
	disk, tmpfs := b.TempDir(), b.TempDir()
	if err := unix.Mount("tmpfs", tmpfs, "tmpfs", 0, "size=2g"); err != nil {
		b.Fatal(err)
	}
	defer unix.Unmount(tmpfs, unix.MNT_DETACH)
	for _, target := range []struct{ name, base string }{{"disk", disk}, {"tmpfs", tmpfs}} {
		for _, ex := range extractors {
			base := target.base
			b.Run(target.name+"/"+ex.name, func(b *testing.B) {
				b.SetBytes(int64(layer.Len()))
				for i := 0; b.Loop(); i++ {
					b.StopTimer()
					dir := filepath.Join(base, ex.name)
					os.RemoveAll(dir)
					if err := os.Mkdir(dir, 0o755); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
					if err := ex.run(dir); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkTar writes the Debian fixture as a layer (what commit, export
// and push pay), to io.Discard.
func BenchmarkTar(b *testing.B) {
	testutil.RequiresRoot(b)
	src, err := testutil.DebianRootfs()
	if err != nil {
		b.Skipf("debian fixture: %v", err)
	}
	var n countWriter
	for b.Loop() {
		n = 0
		if err := Tar(context.Background(), &n, src, TarOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(n))
}

type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) { *c += countWriter(len(p)); return len(p), nil }
