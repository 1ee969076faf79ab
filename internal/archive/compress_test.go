package archive

import (
	"bytes"
	stdgzip "compress/gzip"
	"errors"
	"io"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
)

func TestCompressRoundTrip(t *testing.T) {
	payload := bytes.Repeat([]byte("layer bytes 0123456789 "), 100000)
	for _, c := range []Compression{Uncompressed, Gzip, Zstd} {
		t.Run(c.String(), func(t *testing.T) {
			var blob bytes.Buffer
			w, err := Compress(&blob, c)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write(payload); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if c != Uncompressed && blob.Len() >= len(payload)/10 {
				t.Errorf("%v: %d bytes from %d: not compressed", c, blob.Len(), len(payload))
			}
			r, got, err := Decompress(&blob)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if got != c {
				t.Errorf("sniffed %v, want %v", got, c)
			}
			out, err := io.ReadAll(r)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, payload) {
				t.Errorf("round trip changed %d bytes into %d", len(payload), len(out))
			}
		})
	}
}

func TestDecompress(t *testing.T) {
	var std bytes.Buffer
	zw := stdgzip.NewWriter(&std)
	zw.Write([]byte("from the standard library"))
	zw.Close()

	tests := []struct {
		name    string
		in      []byte
		want    string
		comp    Compression
		invalid bool
	}{
		{name: "empty", in: nil, want: "", comp: Uncompressed},
		{name: "short plain", in: []byte("ab"), want: "ab", comp: Uncompressed},
		{name: "plain tar-like", in: []byte("usr/bin/\x00\x00"), want: "usr/bin/\x00\x00", comp: Uncompressed},
		{name: "stdlib gzip", in: std.Bytes(), want: "from the standard library", comp: Gzip},
		{name: "truncated gzip header", in: []byte{0x1f, 0x8b, 0x08}, comp: Gzip, invalid: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, c, err := Decompress(bytes.NewReader(tc.in))
			if tc.invalid {
				if !errdefs.IsInvalidArgument(err) {
					t.Fatalf("Decompress = %v, want ErrInvalidArgument", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if c != tc.comp {
				t.Errorf("compression %v, want %v", c, tc.comp)
			}
			b, err := io.ReadAll(r)
			if err != nil || string(b) != tc.want {
				t.Errorf("read %q, %v; want %q", b, err, tc.want)
			}
		})
	}
}

func TestCompressUnknown(t *testing.T) {
	if _, err := Compress(io.Discard, Compression(42)); !errors.Is(err, errdefs.ErrNotSupported) {
		t.Fatalf("Compress(42) = %v, want ErrNotSupported", err)
	}
}
