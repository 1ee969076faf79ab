package archive

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/testutil"
)

// TestApplyOwnership checks that skipping fchown for entries root creates
// as 0:0 never leaves an entry with another owner than its tar header's,
// in particular under a setgid directory of another group, where a new
// inode inherits the directory's group.
func TestApplyOwnership(t *testing.T) {
	testutil.RequiresRoot(t)
	with := func(e tent, uid, gid int, mode int64) tent {
		e.hdr.Uid, e.hdr.Gid, e.hdr.Mode = uid, gid, mode
		return e
	}
	layer := makeTar(t,
		with(dir("sg"), 0, 1000, 0o2775),
		with(file("sg/root", "r"), 0, 0, 0o644),
		with(dir("sg/rootdir"), 0, 0, 0o755),
		with(symlink("sg/rootlink", "root"), 0, 0, 0o777),
		with(file("sg/user", "u"), 1000, 1000, 0o600),
		with(dir("plain"), 0, 0, 0o755),
		with(file("plain/root", "r"), 0, 0, 0o4755),
		with(file("plain/grp", "g"), 0, 50, 0o640),
		with(symlink("plain/userlink", "root"), 7, 8, 0o777),
	)
	target := t.TempDir()
	if _, err := Apply(context.Background(), target, bytes.NewReader(layer), ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		uid, gid uint32
		mode     uint32 // permission and special bits; 0 for symlinks
	}{
		{"sg", 0, 1000, 0o2775},
		{"sg/root", 0, 0, 0o644},
		{"sg/rootdir", 0, 0, 0o755}, // no setgid bit inherited from sg
		{"sg/rootlink", 0, 0, 0},
		{"sg/user", 1000, 1000, 0o600},
		{"plain", 0, 0, 0o755},
		{"plain/root", 0, 0, 0o4755},
		{"plain/grp", 0, 50, 0o640},
		{"plain/userlink", 7, 8, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var st unix.Stat_t
			if err := unix.Lstat(filepath.Join(target, tc.name), &st); err != nil {
				t.Fatal(err)
			}
			if st.Uid != tc.uid || st.Gid != tc.gid {
				t.Errorf("owner %d:%d, want %d:%d", st.Uid, st.Gid, tc.uid, tc.gid)
			}
			if tc.mode != 0 && st.Mode&0o7777 != tc.mode {
				t.Errorf("mode %o, want %o", st.Mode&0o7777, tc.mode)
			}
		})
	}
}
