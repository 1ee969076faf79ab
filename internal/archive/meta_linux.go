package archive

import (
	"archive/tar"
	"bytes"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

const paxXattr = "SCHILY.xattr."

// overlayXattr reports the overlayfs bookkeeping attributes. They are never
// copied out of an upper directory, and never taken from a tar: a layer that
// could set trusted.overlay.redirect or .metacopy would steer overlayfs
// lookups; opaque directories come only from `.wh..wh..opq`.
func overlayXattr(name string) bool {
	return strings.HasPrefix(name, "trusted.overlay.") || strings.HasPrefix(name, "user.overlay.")
}

// tolerableXattrErr says which failures to set an xattr are skipped: a
// filesystem without xattr support, or a security.* label (SELinux, IMA)
// the host's LSM refuses. security.capability is kept strict: a ping binary
// without its capability is a silent breakage.
func tolerableXattrErr(name string, err error) bool {
	if err == unix.ENOTSUP || err == unix.EOPNOTSUPP {
		return true
	}
	return strings.HasPrefix(name, "security.") && name != "security.capability"
}

// headerXattrs lists the xattrs a tar header carries, in PAX records.
func headerXattrs(hdr *tar.Header) map[string]string {
	var x map[string]string
	for k, v := range hdr.PAXRecords {
		if name, ok := strings.CutPrefix(k, paxXattr); ok && !overlayXattr(name) {
			if x == nil {
				x = map[string]string{}
			}
			x[name] = v
		}
	}
	return x
}

// chown tolerates EPERM when not running as root: an unprivileged unpack
// (rootless, tests) keeps the files as the calling user.
func (a *applier) chownErr(err error) error {
	if err == unix.EPERM && !a.asRoot {
		return nil
	}
	return err
}

// metaFd sets owner, mode and xattrs through an open descriptor.
func (a *applier) metaFd(fd int, name string, hdr *tar.Header) error {
	return a.meta(fd, name, hdr, false)
}

// meta is metaFd for a node that may already have the owner hdr asks for
// (owned, see ownedAsWanted): then no fchown. The order matters: chown(2)
// clears setuid/setgid bits and security.capability, so the mode and the
// xattrs come after it.
func (a *applier) meta(fd int, name string, hdr *tar.Header, owned bool) error {
	if !owned {
		if err := a.chownErr(a.ops.fchown(fd, hdr.Uid, hdr.Gid)); err != nil {
			return &os.PathError{Op: "fchown", Path: name, Err: err}
		}
	}
	if err := a.ops.fchmod(fd, uint32(hdr.Mode)&0o7777); err != nil {
		return &os.PathError{Op: "fchmod", Path: name, Err: err}
	}
	for k, v := range headerXattrs(hdr) {
		if err := unix.Fsetxattr(fd, k, []byte(v), 0); err != nil && !tolerableXattrErr(k, err) {
			return &os.PathError{Op: "fsetxattr " + k, Path: name, Err: err}
		}
	}
	return nil
}

// metaAt sets the metadata of an entry that cannot be opened safely
// (symlinks, device nodes, fifos) through its parent directory, never
// following the last component.
func (a *applier) metaAt(pfd int, name, base string, hdr *tar.Header, symlink bool) error {
	if !a.ownedAsWanted(hdr) { // pfd is the cached parent: see ownedAsWanted
		if err := a.chownErr(unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW)); err != nil {
			return &os.PathError{Op: "fchownat", Path: name, Err: err}
		}
	}
	if !symlink {
		// The node was just created by mknodat, so it is not a symlink.
		if err := unix.Fchmodat(pfd, base, uint32(hdr.Mode)&0o7777, 0); err != nil {
			return &os.PathError{Op: "fchmodat", Path: name, Err: err}
		}
	}
	if x := headerXattrs(hdr); len(x) > 0 {
		p := procPath(pfd, base)
		for k, v := range x {
			if err := unix.Lsetxattr(p, k, []byte(v), 0); err != nil && !tolerableXattrErr(k, err) {
				return &os.PathError{Op: "lsetxattr " + k, Path: name, Err: err}
			}
		}
	}
	ts := timespecs(accessTime(hdr), hdr.ModTime)
	if err := unix.UtimesNanoAt(pfd, base, ts[:], unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "utimensat", Path: name, Err: err}
	}
	return nil
}

// readXattrs returns the xattrs of path (not following a final symlink),
// without overlayfs bookkeeping, as PAX records.
func readXattrs(path string) (map[string]string, error) {
	names, err := listXattr(path)
	if err != nil || len(names) == 0 {
		return nil, err
	}
	var recs map[string]string
	for _, n := range names {
		if overlayXattr(n) {
			continue
		}
		v, err := getXattr(path, n)
		if err != nil {
			if err == unix.ENODATA {
				continue
			}
			return nil, &os.PathError{Op: "lgetxattr " + n, Path: path, Err: err}
		}
		if recs == nil {
			recs = map[string]string{}
		}
		recs[paxXattr+n] = string(v)
	}
	return recs, nil
}

func listXattr(path string) ([]string, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Llistxattr(path, buf)
		if err == unix.ERANGE {
			sz, err := unix.Llistxattr(path, nil)
			if err != nil {
				return nil, &os.PathError{Op: "llistxattr", Path: path, Err: err}
			}
			buf = make([]byte, sz+64)
			continue
		}
		if err == unix.ENOTSUP || err == unix.EOPNOTSUPP {
			return nil, nil
		}
		if err != nil {
			return nil, &os.PathError{Op: "llistxattr", Path: path, Err: err}
		}
		var names []string
		for _, b := range bytes.Split(buf[:n], []byte{0}) {
			if len(b) > 0 {
				names = append(names, string(b))
			}
		}
		return names, nil
	}
}

func getXattr(path, name string) ([]byte, error) {
	buf := make([]byte, 128)
	for {
		n, err := unix.Lgetxattr(path, name, buf)
		if err == unix.ERANGE {
			sz, err := unix.Lgetxattr(path, name, nil)
			if err != nil {
				return nil, err
			}
			buf = make([]byte, sz+64)
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}
