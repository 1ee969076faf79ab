package archive

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/linux"
)

// cleanName turns a tar entry name into a path relative to the extraction
// root. Absolute names are made relative (Docker's behaviour: layers built by
// old tools carry "/usr/bin/x"); a name that still climbs out ("../x") is
// refused rather than silently clamped, because it is a sign of a hostile or
// broken layer.
func cleanName(name string) (string, bool) {
	if strings.IndexByte(name, 0) >= 0 {
		return "", false
	}
	n := path.Clean(name)
	n = strings.TrimLeft(n, "/")
	if n == "" {
		return ".", true
	}
	n = path.Clean(n)
	if n == ".." || strings.HasPrefix(n, "../") {
		return "", false
	}
	return n, true
}

// splitName returns the parent ("." for top level) and the last component.
func splitName(name string) (string, string) {
	i := strings.LastIndexByte(name, '/')
	if i < 0 {
		return ".", name
	}
	return name[:i], name[i+1:]
}

// resolveFlags contain every walk in the root: symlinks (absolute ones and
// `..` chains included) are resolved as if dir were "/", and /proc magic
// links, which could jump anywhere, are refused.
const resolveFlags = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS

// openInRoot opens rel (a cleaned relative path) under rootfd with openat2
// (retried when a concurrent rename raced the kernel's lookup).
func openInRoot(rootfd int, rel string, flags uint64) (int, error) {
	how := &unix.OpenHow{Flags: flags | unix.O_CLOEXEC, Resolve: resolveFlags}
	fd, err := linux.Openat2(rootfd, rel, how)
	if err != nil {
		return -1, &os.PathError{Op: "openat2", Path: rel, Err: err}
	}
	return fd, nil
}

// root is an extraction target: an O_PATH descriptor of the directory and a
// one-entry cache of the last parent directory opened. Tar streams list a
// directory's files together, so the cache saves one openat2 per entry. The
// cache cannot go stale in a harmful way: only entries whose parent is a
// different (higher) directory can remove or replace the cached directory,
// and such an entry switches the cache first.
type root struct {
	fd        int
	cacheName string
	cacheFd   int
	// cacheGid is the cached directory's group, which decides the group of
	// what is created in it (owner_linux.go).
	cacheGid uint32
}

func openRoot(dir string) (*root, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	return &root{fd: fd, cacheFd: -1}, nil
}

func (r *root) close() {
	if r.cacheFd >= 0 {
		unix.Close(r.cacheFd)
	}
	unix.Close(r.fd)
}

// parent returns an O_PATH descriptor of directory rel, creating missing
// directories (0755, like Docker) on the way. The descriptor belongs to the
// cache: callers must not close it.
func (r *root) parent(rel string) (int, error) {
	if rel == r.cacheName && r.cacheFd >= 0 {
		return r.cacheFd, nil
	}
	fd, err := openInRoot(r.fd, rel, unix.O_PATH|unix.O_DIRECTORY)
	if errors.Is(err, unix.ENOENT) {
		fd, err = r.mkdirAll(rel)
	}
	if err != nil {
		return -1, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, &os.PathError{Op: "fstat", Path: rel, Err: err}
	}
	r.forget()
	r.cacheName, r.cacheFd, r.cacheGid = rel, fd, st.Gid
	return fd, nil
}

// forget empties the cache: an entry is about to change the owner of the
// directory it holds.
func (r *root) forget() {
	if r.cacheFd >= 0 {
		unix.Close(r.cacheFd)
	}
	r.cacheName, r.cacheFd = "", -1
}

// mkdirAll creates rel component by component. Every component is looked up
// from the root with RESOLVE_IN_ROOT, so a symlink in the way leads back
// inside the root, and mkdirat never follows the final component.
func (r *root) mkdirAll(rel string) (int, error) {
	cur, err := unix.Dup(r.fd)
	if err != nil {
		return -1, err
	}
	parts := strings.Split(rel, "/")
	for i, part := range parts {
		sub := strings.Join(parts[:i+1], "/")
		next, err := openInRoot(r.fd, sub, unix.O_PATH|unix.O_DIRECTORY)
		if errors.Is(err, unix.ENOENT) {
			if err := unix.Mkdirat(cur, part, 0o755); err != nil && err != unix.EEXIST {
				unix.Close(cur)
				return -1, &os.PathError{Op: "mkdirat", Path: sub, Err: err}
			}
			next, err = openInRoot(r.fd, sub, unix.O_PATH|unix.O_DIRECTORY)
		}
		unix.Close(cur)
		if err != nil {
			return -1, err
		}
		cur = next
	}
	return cur, nil
}

// removeAllAt removes name under dirfd and everything below it without
// following symlinks: each level is opened O_NOFOLLOW relative to its parent.
func removeAllAt(dirfd int, name string) error {
	err := unix.Unlinkat(dirfd, name, 0)
	if err == nil || err == unix.ENOENT {
		return nil
	}
	if err != unix.EISDIR && err != unix.EPERM {
		return &os.PathError{Op: "unlinkat", Path: name, Err: err}
	}
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "openat", Path: name, Err: err}
	}
	f := os.NewFile(uintptr(fd), name)
	names, err := f.Readdirnames(-1)
	for _, n := range names {
		if err != nil {
			break
		}
		err = removeAllAt(fd, n)
	}
	f.Close()
	if err != nil {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	if err := unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR); err != nil && err != unix.ENOENT {
		return &os.PathError{Op: "rmdir", Path: name, Err: err}
	}
	return nil
}

// procPath names name inside the directory dirfd through /proc/self/fd, for
// the l*xattr calls that have no *at form. The kernel resolves the fd link to
// the directory itself; the last component is not followed by l*xattr.
func procPath(dirfd int, name string) string {
	return "/proc/self/fd/" + strconv.Itoa(dirfd) + "/" + name
}

func syncDir(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(fd)
	if err := unix.Syncfs(fd); err != nil {
		return &os.PathError{Op: "syncfs", Path: dir, Err: err}
	}
	return nil
}

// invalid builds the error for a refused entry.
func invalid(entry, why string) error {
	return fmt.Errorf("layer entry %q: %s: %w", entry, why, errdefs.ErrInvalidArgument)
}
