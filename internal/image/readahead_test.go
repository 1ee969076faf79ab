package image

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"testing"
)

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

func TestReadAhead(t *testing.T) {
	data := make([]byte, 3*readAheadChunk+12345)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("connection reset")
	for _, tc := range []struct {
		name    string
		src     io.Reader
		wantErr error
	}{
		{"whole stream", bytes.NewReader(data), nil},
		{"empty", bytes.NewReader(nil), nil},
		{"source fails", &failingReader{bytes.NewReader(data), boom}, boom},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ra := newReadAhead(io.NopCloser(tc.src), receiveChunks)
			defer ra.Close()
			got, err := io.ReadAll(io.LimitReader(ra, int64(len(data))+1))
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr == nil && tc.name == "whole stream" && !bytes.Equal(got, data) {
				t.Fatalf("read %d bytes, not the source's %d", len(got), len(data))
			}
		})
	}
	// Closing early stops the goroutine even when nobody reads.
	ra := newReadAhead(io.NopCloser(bytes.NewReader(data)), inflateChunks)
	if err := ra.Close(); err != nil {
		t.Fatal(err)
	}
}
