package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
	"golang.org/x/sys/unix"
)

// TestApplyWriters covers what the writer goroutines finish (small files)
// against what the reader writes itself (big files), within one layer:
// bytes, mode, owner and mtime must come out the same either way, and an
// entry that names a file again or links to it must see the layer's last
// word whatever a writer has done by then.
func TestApplyWriters(t *testing.T) {
	testutil.RequiresRoot(t)
	mtime := time.Unix(1600000000, 0)
	big := strings.Repeat("0123456789abcdef", (smallFile+4096)/16) // reader-written
	sized := func(name, body string, mode int64, uid int) tent {
		return tent{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Uid: uid, Gid: uid, Size: int64(len(body)), ModTime: mtime}, body: body}
	}
	entries := []tent{
		dir("d/"),
		sized("d/small", "small body", 0o640, 0),
		sized("d/empty", "", 0o600, 0),
		sized("d/owned", "by 1000", 0o4755, 1000), // setuid survives the chown
		sized("d/big", big, 0o644, 0),
		sized("d/again", "first", 0o644, 0),
		sized("d/again", "second", 0o600, 0), // same name twice: the last wins
		hardlink("d/link", "d/small"),
	}
	for i := range 200 { // more files than the queue holds
		entries = append(entries, sized("d/many/"+strings.Repeat("x", i%7)+string(rune('a'+i%26))+string(rune('a'+i/26)), strings.Repeat("y", i*97), 0o644, 0))
	}
	entries = append([]tent{dir("d/many/")}, entries...)
	root := t.TempDir()
	check := func(rel, body string, mode os.FileMode, uid int) {
		t.Helper()
		p := filepath.Join(root, rel)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != body {
			t.Errorf("%s: %d bytes %.20q, want %d bytes %.20q", rel, len(b), b, len(body), body)
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			t.Fatal(err)
		}
		if got := os.FileMode(st.Mode & 0o7777); got != mode {
			t.Errorf("%s: mode %o, want %o", rel, got, mode)
		}
		if int(st.Uid) != uid || int(st.Gid) != uid {
			t.Errorf("%s: owner %d:%d, want %d:%d", rel, st.Uid, st.Gid, uid, uid)
		}
		if st.Mtim.Sec != mtime.Unix() {
			t.Errorf("%s: mtime %d, want %d", rel, st.Mtim.Sec, mtime.Unix())
		}
	}
	// Later entries that need an earlier small file to exist, or to be
	// gone: a directory over it, a file over its parent directory.
	entries = append(entries,
		sized("r/x", "soon a directory", 0o644, 0),
		dir("r/x/"),
		sized("r/x/inner", "inner", 0o644, 0),
		dir("p/"),
		sized("p/f", "lost with its directory", 0o644, 0),
		sized("p", "file over directory", 0o600, 0),
	)
	if _, err := Apply(context.Background(), root, bytes.NewReader(makeTar(t, entries...)), ApplyOptions{Whiteouts: WhiteoutsOverlay}); err != nil {
		t.Fatal(err)
	}
	check("r/x/inner", "inner", 0o644, 0)
	check("p", "file over directory", 0o600, 0)
	check("d/small", "small body", 0o640, 0)
	check("d/link", "small body", 0o640, 0)
	check("d/empty", "", 0o600, 0)
	check("d/owned", "by 1000", 0o4755, 1000)
	check("d/big", big, 0o644, 0)
	check("d/again", "second", 0o600, 0)
	for i := range 200 {
		check("d/many/"+strings.Repeat("x", i%7)+string(rune('a'+i%26))+string(rune('a'+i/26)), strings.Repeat("y", i*97), 0o644, 0)
	}
}

// TestApplyWriterFailure: a failure in a writer (here a malformed
// security.capability, which is never tolerated) fails the Apply and
// names the entry.
func TestApplyWriterFailure(t *testing.T) {
	testutil.RequiresRoot(t)
	bad := tent{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "bin/ping", Mode: 0o755, Size: 4,
		PAXRecords: map[string]string{paxXattr + "security.capability": "junk"}}, body: "ELF!"}
	entries := []tent{dir("bin/"), bad}
	for i := range 50 {
		entries = append(entries, file("bin/f"+string(rune('a'+i%26))+string(rune('a'+i/26)), "x"))
	}
	_, err := Apply(context.Background(), t.TempDir(), bytes.NewReader(makeTar(t, entries...)), ApplyOptions{Whiteouts: WhiteoutsOverlay})
	if err == nil || !strings.Contains(err.Error(), `"bin/ping"`) || !strings.Contains(err.Error(), "security.capability") {
		t.Fatalf("Apply = %v, want the bad capability on bin/ping", err)
	}
}
