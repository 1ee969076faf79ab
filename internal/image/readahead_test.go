package image

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"testing"
	"testing/iotest"
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
			ra := newReadAhead(io.NopCloser(tc.src), receiveChunks, nil)
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
	ra := newReadAhead(io.NopCloser(bytes.NewReader(data)), inflateChunks, nil)
	if err := ra.Close(); err != nil {
		t.Fatal(err)
	}
}

// countingSink records what a readAhead's sink is given.
type countingSink struct {
	bytes.Buffer
	writes int
	failAt int // fail the write with this number (1-based); 0: never
}

func (s *countingSink) Write(p []byte) (int, error) {
	s.writes++
	if s.writes == s.failAt {
		return 0, errors.New("disk full")
	}
	return s.Buffer.Write(p)
}

// TestReadAheadSink: the sink sees every byte once, in chunk-sized writes
// however small the source's reads are, and its failure is the reader's.
func TestReadAheadSink(t *testing.T) {
	data := make([]byte, 3*readAheadChunk+123)
	for i := range data {
		data[i] = byte(i * 7)
	}
	sink := &countingSink{}
	ra := newReadAhead(io.NopCloser(iotest.OneByteReader(bytes.NewReader(data))), receiveChunks, sink)
	got, err := io.ReadAll(ra)
	ra.Close()
	if err != nil || !bytes.Equal(got, data) || !bytes.Equal(sink.Bytes(), data) {
		t.Fatalf("read %d bytes, sink %d bytes, err %v; want %d", len(got), sink.Len(), err, len(data))
	}
	if sink.writes != 4 {
		t.Errorf("sink written %d times, want 4 (one per chunk)", sink.writes)
	}

	failing := &countingSink{failAt: 2}
	ra = newReadAhead(io.NopCloser(bytes.NewReader(data)), receiveChunks, failing)
	got, err = io.ReadAll(ra)
	ra.Close()
	if err == nil || err.Error() != "disk full" || len(got) != readAheadChunk {
		t.Fatalf("with a failing sink: read %d bytes, err %v; want one chunk and the sink's error", len(got), err)
	}
}
