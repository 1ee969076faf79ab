package archive

import (
	"bytes"
	"errors"
	"io"
	"math/rand"
	"sync"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
)

func requiresIgzip(t *testing.T) {
	t.Helper()
	if igzipPath() == "" {
		t.Skip("igzip not installed (Debian package isal) or BERTH_IGZIP=0: DecompressLayer uses the Go decoder")
	}
}

// gzipped compresses each part as its own gzip member, as concatenated
// gzip files are.
func gzipped(t *testing.T, parts ...[]byte) []byte {
	t.Helper()
	var b bytes.Buffer
	for _, p := range parts {
		w, err := Compress(&b, Gzip)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(p); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

// layerBytes is 4 MiB that compress somewhat, like a layer of binaries.
func layerBytes() []byte {
	rnd := rand.New(rand.NewSource(1))
	b := make([]byte, 4<<20)
	for i := range b {
		b[i] = byte(rnd.Intn(16)) + 'a'
	}
	return b
}

// failingReader returns its data, then err.
type failingReader struct {
	r   io.Reader
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, f.err
	}
	return n, err
}

var errSource = errors.New("connection reset by the registry")

func TestDecompressLayerIgzip(t *testing.T) {
	requiresIgzip(t)
	payload := layerBytes()
	blob := gzipped(t, payload[:1<<20], payload[1<<20:]) // two members
	corrupt := bytes.Clone(blob)
	for i := len(corrupt) / 2; i < len(corrupt)/2+64; i++ {
		corrupt[i] ^= 0x5a
	}
	tests := []struct {
		name    string
		src     io.Reader
		want    []byte
		invalid bool  // the error wraps ErrInvalidArgument
		wantErr error // the error wraps this one
	}{
		{name: "two members", src: bytes.NewReader(blob), want: payload},
		{name: "corrupt", src: bytes.NewReader(corrupt), invalid: true},
		{name: "truncated", src: bytes.NewReader(blob[:len(blob)/3]), invalid: true},
		{name: "truncated header", src: bytes.NewReader([]byte{0x1f, 0x8b, 0x08}), invalid: true},
		{name: "source fails", src: &failingReader{bytes.NewReader(blob[:len(blob)/2]), errSource}, wantErr: errSource},
		{name: "not gzip", src: bytes.NewReader([]byte("plain tar bytes")), want: []byte("plain tar bytes")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, _, err := DecompressLayer(tc.src)
			if err != nil {
				// The Go decoder (a stream shorter than the sniffed
				// head) checks the gzip header at once.
				if tc.invalid && errdefs.IsInvalidArgument(err) {
					return
				}
				t.Fatal(err)
			}
			got, err := io.ReadAll(r)
			if cerr := r.Close(); cerr != nil {
				t.Errorf("Close: %v", cerr)
			}
			switch {
			case tc.wantErr != nil:
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("read: %v, want %v", err, tc.wantErr)
				}
			case tc.invalid:
				if !errdefs.IsInvalidArgument(err) {
					t.Fatalf("read: %v, want ErrInvalidArgument", err)
				}
			default:
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, tc.want) {
					t.Fatalf("got %d bytes, want %d (equal prefix: %v)", len(got), len(tc.want), bytes.HasPrefix(tc.want, got))
				}
			}
		})
	}
}

// watchedReader fails the test if read after its owner said reads must
// have stopped.
type watchedReader struct {
	t       *testing.T
	r       io.Reader
	mu      sync.Mutex
	stopped bool
}

func (w *watchedReader) Read(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		w.t.Error("source read after Close returned")
	}
	return w.r.Read(p)
}

// Close in the middle of a stream kills igzip and returns only when the
// feeder reads the source no more: the fetch path then reads the rest of
// the source itself, to finish the compressed digest.
func TestDecompressLayerCloseEarly(t *testing.T) {
	requiresIgzip(t)
	blob := gzipped(t, layerBytes())
	src := &watchedReader{t: t, r: bytes.NewReader(blob)}
	r, c, err := DecompressLayer(src)
	if err != nil || c != Gzip {
		t.Fatalf("DecompressLayer = %v, %v", c, err)
	}
	if _, err := io.ReadFull(r, make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	src.mu.Lock()
	src.stopped = true
	rest, _ := io.Copy(io.Discard, src.r)
	src.mu.Unlock()
	if rest == int64(len(blob)) {
		t.Errorf("the decoder read nothing")
	}
	if _, err := r.Read(make([]byte, 1)); err == nil {
		t.Errorf("Read after Close succeeded")
	}
}

func TestIncompressible(t *testing.T) {
	random := make([]byte, 1<<20)
	rand.New(rand.NewSource(2)).Read(random)
	head := func(b []byte) []byte { return b[:min(len(b), sniffSize)] }
	tests := []struct {
		name string
		head []byte
		want bool
	}{
		{"random data", head(gzipped(t, random)), true},
		{"binaries-like", head(gzipped(t, layerBytes())), false},
		{"text", head(gzipped(t, bytes.Repeat([]byte("usr/share/doc "), 100000))), false},
		{"not gzip", head(random), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := incompressible(tc.head); got != tc.want {
				t.Errorf("incompressible = %v, want %v", got, tc.want)
			}
		})
	}
}
