package archive

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// tent is one entry of a tarball built by a test.
type tent struct {
	hdr  tar.Header
	body string
}

func file(name, body string) tent {
	return tent{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body))}, body: body}
}
func dir(name string) tent {
	return tent{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755}}
}
func symlink(name, target string) tent {
	return tent{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777}}
}
func hardlink(name, target string) tent {
	return tent{hdr: tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target}}
}

func makeTar(t testing.TB, entries ...tent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.hdr
		if h.ModTime.IsZero() {
			h.ModTime = time.Unix(1700000000, 0)
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("tar header %s: %v", h.Name, err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// node is what a tree comparison looks at for one path.
type node struct {
	Mode     uint32
	UID, GID uint32
	Mtime    int64 // ns; 0 when not compared
	Size     int64
	Sum      string
	Link     string
	Rdev     uint64
	Xattrs   string
	Hardlink string // first name (lexically) sharing the inode, for nlink > 1
}

// snapshotTree records every path below root (not root itself).
func snapshotTree(t testing.TB, root string, dirTimes bool) map[string]node {
	t.Helper()
	out := map[string]node{}
	inodes := map[uint64]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		n := node{Mode: st.Mode, UID: st.Uid, GID: st.Gid, Mtime: st.Mtim.Nano(), Rdev: uint64(st.Rdev)}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			s := sha256.Sum256(b)
			n.Size, n.Sum = st.Size, hex.EncodeToString(s[:])
			if st.Nlink > 1 {
				if first, ok := inodes[st.Ino]; ok {
					n.Hardlink = first
				} else {
					inodes[st.Ino] = rel
					n.Hardlink = rel
				}
			}
		case unix.S_IFLNK:
			n.Link, _ = os.Readlink(p)
		case unix.S_IFDIR:
			if !dirTimes {
				n.Mtime = 0
			}
		}
		recs, err := readXattrs(p)
		if err != nil {
			return err
		}
		var xs []string
		for k, v := range recs {
			if strings.HasPrefix(k, paxXattr+"security.selinux") {
				continue
			}
			xs = append(xs, k+"="+v)
		}
		sort.Strings(xs)
		n.Xattrs = strings.Join(xs, ",")
		out[rel] = n
		return nil
	})
	if err != nil {
		t.Fatalf("snapshot %s: %v", root, err)
	}
	// A hardlink group of one (its partners were deleted, or live in
	// another layer) is just a file.
	members := map[string]int{}
	for _, n := range out {
		if n.Hardlink != "" {
			members[n.Hardlink]++
		}
	}
	for k, n := range out {
		if n.Hardlink != "" && members[n.Hardlink] == 1 {
			n.Hardlink = ""
			out[k] = n
		}
	}
	return out
}

func compareTrees(t testing.TB, want, got map[string]node) {
	t.Helper()
	var names []string
	for k := range want {
		names = append(names, k)
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	bad := 0
	for _, k := range names {
		w, wok := want[k]
		g, gok := got[k]
		switch {
		case !wok:
			t.Errorf("%s: unexpected (%+v)", k, g)
		case !gok:
			t.Errorf("%s: missing (want %+v)", k, w)
		case w != g:
			t.Errorf("%s:\n  want %+v\n   got %+v", k, w, g)
		default:
			continue
		}
		if bad++; bad > 20 {
			t.Fatal("too many differences")
		}
	}
}

// hostState fingerprints what a hostile layer must never touch: the
// sentinel directory beside the target and /etc/passwd.
func hostState(t testing.TB, sentinel string) string {
	t.Helper()
	var b strings.Builder
	for rel, n := range snapshotTree(t, sentinel, true) {
		fmt.Fprintf(&b, "%s %+v\n", rel, n)
	}
	lines := strings.Split(b.String(), "\n")
	sort.Strings(lines)
	var st unix.Stat_t
	if err := unix.Stat("/etc/passwd", &st); err != nil {
		t.Fatal(err)
	}
	passwd, _ := os.ReadFile("/etc/passwd")
	sum := sha256.Sum256(passwd)
	return strings.Join(lines, "\n") + fmt.Sprintf("passwd %d %d %x", st.Ino, st.Mtim.Nano(), sum)
}
