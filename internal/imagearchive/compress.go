package imagearchive

import (
	"bufio"
	"bytes"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// compression of a stream, sniffed from its magic bytes.
type compression int

const (
	uncompressed compression = iota
	gzipped
	zstded
)

var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// decompress sniffs r and returns its uncompressed stream.
func decompress(r io.Reader) (io.ReadCloser, compression, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, _ := br.Peek(4) // a short stream is simply not compressed
	switch {
	case bytes.HasPrefix(head, gzipMagic):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, 0, err
		}
		return zr, gzipped, nil
	case bytes.HasPrefix(head, zstdMagic):
		zr, err := zstd.NewReader(br)
		if err != nil {
			return nil, 0, err
		}
		return zstdCloser{zr}, zstded, nil
	}
	return io.NopCloser(br), uncompressed, nil
}

type zstdCloser struct{ *zstd.Decoder }

func (z zstdCloser) Close() error { z.Decoder.Close(); return nil }
