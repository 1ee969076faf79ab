package archive

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/diskhint"
	"github.com/berth-dev/berth/internal/errdefs"
)

const (
	defaultMaxBytes = 64 << 30
	whiteoutPrefix  = ".wh."
	whiteoutOpaque  = ".wh..wh..opq"
	// whiteoutMeta prefixes AUFS bookkeeping entries (.wh..wh.plnk,
	// .wh..wh.aufs) that carry nothing for us.
	whiteoutMeta = ".wh..wh."
)

// copyBufs pools the 1 MiB copy buffers: big reads and writes are what make
// extraction run at disk speed, and a pool keeps parallel layer unpacks from
// allocating one per file.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

// limitReader counts bytes and fails once more than max have been read.
type limitReader struct {
	r        io.Reader
	n, max   int64
	exceeded bool
}

var errTooLarge = errors.New("layer too large")

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n >= l.max+1 {
		l.exceeded = true
		return 0, errTooLarge
	}
	if rem := l.max + 1 - l.n; int64(len(p)) > rem {
		p = p[:rem]
	}
	n, err := l.r.Read(p)
	l.n += int64(n)
	if l.n > l.max {
		l.exceeded = true
		return n, errTooLarge
	}
	return n, err
}

type dirTime struct {
	name         string
	atime, mtime time.Time
}

type applier struct {
	root   *root
	opts   ApplyOptions
	ops    fsops // the per-entry syscalls (fsops_linux.go)
	buf    []byte
	asRoot bool
	// rootCreator: new inodes are created as 0:0 (owner_linux.go).
	rootCreator bool
	created     map[string]struct{}
	// keptDirs are directories this layer declared where one existed.
	keptDirs map[string]struct{}
	dirs     []dirTime
	writers  *fileWriters // small files' second half (filejobs_linux.go)
	lr       *limitReader // the layer's byte budget
}

func apply(ctx context.Context, dir string, r io.Reader, opts ApplyOptions) (int64, error) {
	max := opts.MaxBytes
	if max <= 0 {
		max = defaultMaxBytes
	}
	rt, err := openRoot(dir)
	if err != nil {
		return 0, fmt.Errorf("apply layer: %w", err)
	}
	markHierarchyTop(dir)
	defer rt.close()
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)

	// The tar reader reads headers 512 bytes at a time: a reader that
	// buffers in memory itself (it reports what it holds, as bufio.Reader
	// and package image's read-ahead do) is read directly, others through
	// a buffer of ours — one copy of every byte fewer for a pull.
	if _, buffered := r.(interface{ Buffered() int }); !buffered {
		r = bufio.NewReaderSize(r, 128<<10)
	}
	lr := &limitReader{r: r, max: max}
	tooLarge := func(err error) error {
		if lr.exceeded {
			return fmt.Errorf("apply layer: layer exceeds %d bytes uncompressed: %w", max, errdefs.ErrInvalidArgument)
		}
		return err
	}
	a := &applier{root: rt, opts: opts, ops: fsopsFor(rt.fd), buf: *bp, asRoot: os.Geteuid() == 0, rootCreator: creatorIsRoot(), created: map[string]struct{}{}, keptDirs: map[string]struct{}{}, lr: lr}
	a.writers = newFileWriters(a)
	// Every writer is done before apply returns, whichever way: the
	// caller may remove dir right after.
	waited := false
	defer func() {
		if !waited {
			_ = a.writers.wait()
		}
	}()
	tr := tar.NewReader(lr)
	for {
		if err := ctx.Err(); err != nil {
			return lr.n, err
		}
		if err := a.writers.failed(); err != nil {
			return lr.n, fmt.Errorf("apply layer: %w", err)
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if errors.Is(err, tar.ErrHeader) || errors.Is(err, io.ErrUnexpectedEOF) {
				err = fmt.Errorf("%w: %w", errdefs.ErrInvalidArgument, err)
			}
			return lr.n, tooLarge(fmt.Errorf("apply layer: read tar: %w", err))
		}
		if err := a.entry(hdr, tr); err != nil {
			return lr.n, tooLarge(fmt.Errorf("apply layer: %w", err))
		}
	}
	// Read the tar's trailing padding too: callers digest the stream they
	// feed in and need all of it consumed.
	if _, err := io.CopyBuffer(io.Discard, lr, a.buf); err != nil {
		return lr.n, tooLarge(fmt.Errorf("apply layer: read tar: %w", err))
	}
	waited = true
	if err := a.writers.wait(); err != nil {
		return lr.n, fmt.Errorf("apply layer: %w", err)
	}
	// Directory times last: creating their content changed them.
	for i := len(a.dirs) - 1; i >= 0; i-- {
		if err := a.setDirTime(a.dirs[i]); err != nil {
			return lr.n, fmt.Errorf("apply layer: %w", err)
		}
	}
	return lr.n, nil
}

func (a *applier) entry(hdr *tar.Header, tr io.Reader) error {
	name, ok := cleanName(hdr.Name)
	if !ok {
		return invalid(hdr.Name, "path escapes the target directory")
	}
	if name == "." {
		if hdr.Typeflag != tar.TypeDir {
			return invalid(hdr.Name, "the root can only be a directory")
		}
		if a.root.cacheName == "." {
			a.root.forget() // its owner may change
		}
		fd, err := unix.Openat(a.root.fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return &os.PathError{Op: "open", Path: ".", Err: err}
		}
		defer unix.Close(fd)
		a.dirs = append(a.dirs, dirTime{".", accessTime(hdr), hdr.ModTime})
		return a.metaFd(fd, name, hdr)
	}
	parentRel, base := splitName(name)
	if strings.HasPrefix(base, whiteoutPrefix) {
		return a.whiteout(hdr.Name, parentRel, base)
	}
	pfd, err := a.root.parent(parentRel)
	if err != nil {
		return parentErr(hdr.Name, err)
	}
	if err := a.create(pfd, name, base, hdr, tr); err != nil {
		return fmt.Errorf("entry %q: %w", hdr.Name, err)
	}
	a.created[name] = struct{}{}
	return nil
}

// parentErr classifies a parent directory that cannot be reached: a path
// through a file, a symlink loop, or a symlink that leads (inside the root)
// to nothing. Those are properties of the layer, not of the host.
func parentErr(entry string, err error) error {
	if errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EXDEV) {
		return invalid(entry, fmt.Sprintf("parent is not a directory inside the target (%v)", err))
	}
	return fmt.Errorf("entry %q: %w", entry, err)
}

// replace clears the way for a new entry at base: like Docker, an existing
// directory stays when the new entry is a directory too; anything else is
// removed (a whole tree if need be).
func replace(pfd int, base string, isDir bool) (keptDir bool, err error) {
	var st unix.Stat_t
	if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if err == unix.ENOENT {
			return false, nil
		}
		return false, &os.PathError{Op: "fstatat", Path: base, Err: err}
	}
	if isDir && st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return true, nil
	}
	return false, removeAllAt(pfd, base)
}

// createAt runs mk, which creates base in pfd without following it; when
// something is already there it is replaced and mk runs once more. Trying
// first saves a stat per entry in the common case, an empty directory.
func createAt(pfd int, base string, mk func() error) error {
	err := mk()
	if err != unix.EEXIST {
		return err
	}
	if _, err := replace(pfd, base, false); err != nil {
		return err
	}
	return mk()
}

// writebackChunk is how much of a big file is left dirty before the
// kernel is asked to start writing it out (see writebackWriter).
const writebackChunk = 8 << 20

// writebackWriter is fdWriter for big files: every writebackChunk it asks
// the kernel to start writing what came before (sync_file_range
// SYNC_FILE_RANGE_WRITE, which does not wait). The snapshot's syncfs at the
// end then finds most of a big layer on disk already instead of starting
// on all of it; nothing depends on the hint.
type writebackWriter struct {
	fdWriter
	written, flushed int64
}

func (w *writebackWriter) Write(p []byte) (int, error) {
	n, err := w.fdWriter.Write(p)
	w.written += int64(n)
	if w.written-w.flushed >= writebackChunk {
		diskhint.StartWriteback(w.fd, w.flushed, w.written-w.flushed)
		w.flushed = w.written
	}
	return n, err
}

func (a *applier) create(pfd int, name, base string, hdr *tar.Header, tr io.Reader) error {
	mode := uint32(hdr.Mode) & 0o7777
	switch hdr.Typeflag {
	case tar.TypeDir:
		owned := a.ownedAsWanted(hdr)
		err := a.ops.mkdirat(pfd, base, 0o700)
		if err == unix.EEXIST {
			var kept bool
			if kept, err = replace(pfd, base, true); err == nil && !kept {
				err = a.ops.mkdirat(pfd, base, 0o700)
			}
			if kept {
				a.keptDirs[name] = struct{}{}
				owned = false // an existing directory keeps its old owner
			}
		}
		if err != nil {
			return &os.PathError{Op: "mkdirat", Path: name, Err: err}
		}
		fd, err := a.ops.openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return &os.PathError{Op: "openat", Path: name, Err: err}
		}
		defer a.ops.close(fd)
		a.dirs = append(a.dirs, dirTime{name, accessTime(hdr), hdr.ModTime})
		return a.meta(fd, name, hdr, owned)

	case tar.TypeReg, tar.TypeGNUSparse: // the reader expands sparse files
		owned := a.ownedAsWanted(hdr)
		var fd int
		err := createAt(pfd, base, func() (err error) {
			fd, err = a.ops.openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
			return err
		})
		if err != nil {
			return &os.PathError{Op: "openat", Path: name, Err: err}
		}
		if hdr.Typeflag == tar.TypeReg && hdr.Size <= smallFile {
			return a.writers.submit(fd, name, hdr, owned, tr)
		}
		defer a.ops.close(fd)
		if hdr.Typeflag == tar.TypeReg {
			// The header's size is a claim the stream has yet to back:
			// no more than the layer's byte budget has left.
			diskhint.Preallocate(fd, min(hdr.Size, a.lr.max-a.lr.n))
		}
		// A bare fd writer, not os.File: no fcntl per file, and CopyBuffer
		// uses our 1 MiB buffer instead of os.File's 32 KiB ReadFrom path.
		var w io.Writer = fdWriter{fd, a.ops}
		if hdr.Size >= writebackChunk && !a.opts.NoWriteback {
			w = &writebackWriter{fdWriter: fdWriter{fd, a.ops}}
		}
		if _, err := io.CopyBuffer(w, struct{ io.Reader }{tr}, a.buf); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
		if err := a.meta(fd, name, hdr, owned); err != nil {
			return err
		}
		return a.setTimesFd(fd, name, accessTime(hdr), hdr.ModTime)

	case tar.TypeSymlink:
		if err := createAt(pfd, base, func() error { return unix.Symlinkat(hdr.Linkname, pfd, base) }); err != nil {
			return &os.PathError{Op: "symlinkat", Path: name, Err: err}
		}
		return a.metaAt(pfd, name, base, hdr, true)

	case tar.TypeLink:
		return a.link(pfd, name, base, hdr)

	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		kind := map[byte]uint32{tar.TypeChar: unix.S_IFCHR, tar.TypeBlock: unix.S_IFBLK, tar.TypeFifo: unix.S_IFIFO}[hdr.Typeflag]
		dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
		if err := createAt(pfd, base, func() error { return unix.Mknodat(pfd, base, kind|(mode&0o777), int(dev)) }); err != nil {
			return &os.PathError{Op: "mknodat", Path: name, Err: err}
		}
		return a.metaAt(pfd, name, base, hdr, false)

	case tar.TypeXGlobalHeader:
		return nil
	}
	return invalid(hdr.Name, fmt.Sprintf("unsupported tar entry type %q", hdr.Typeflag))
}

// link makes a hardlink. The target is resolved in the root like any other
// name, and linkat without AT_SYMLINK_FOLLOW links a symlink itself rather
// than what it points to, so the new name can only share an inode that
// already lives inside dir.
func (a *applier) link(pfd int, name, base string, hdr *tar.Header) error {
	target, ok := cleanName(hdr.Linkname)
	if !ok || target == "." {
		return invalid(hdr.Name, fmt.Sprintf("hardlink target %q is outside the layer", hdr.Linkname))
	}
	if target == name {
		return nil
	}
	tparent, tbase := splitName(target)
	tfd, err := openInRoot(a.root.fd, tparent, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return invalid(hdr.Name, fmt.Sprintf("hardlink target %q is missing", hdr.Linkname))
	}
	defer unix.Close(tfd)
	var st unix.Stat_t
	if err := unix.Fstatat(tfd, tbase, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return invalid(hdr.Name, fmt.Sprintf("hardlink target %q is missing", hdr.Linkname))
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return invalid(hdr.Name, fmt.Sprintf("hardlink target %q is a directory", hdr.Linkname))
	}
	if err := createAt(pfd, base, func() error { return unix.Linkat(tfd, tbase, pfd, base, 0) }); err != nil {
		if err == unix.ENOENT {
			return invalid(hdr.Name, fmt.Sprintf("hardlink target %q is missing", hdr.Linkname))
		}
		return &os.PathError{Op: "linkat", Path: name, Err: err}
	}
	return nil
}

// whiteout handles `.wh.NAME` and `.wh..wh..opq`. Per the OCI image spec a
// whiteout hides only what parent layers hold, never what this layer itself
// created, so names this layer wrote are left alone.
func (a *applier) whiteout(entry, parentRel, base string) error {
	pfd, err := a.root.parent(parentRel)
	if err != nil {
		return parentErr(entry, err)
	}
	if base == whiteoutOpaque {
		return a.opaque(entry, pfd, parentRel)
	}
	if strings.HasPrefix(base, whiteoutMeta) {
		return nil
	}
	target := strings.TrimPrefix(base, whiteoutPrefix)
	if target == "" || target == "." || target == ".." {
		return invalid(entry, "malformed whiteout")
	}
	rel := target
	if parentRel != "." {
		rel = parentRel + "/" + target
	}
	if _, ok := a.created[rel]; ok {
		return nil
	}
	if err := removeAllAt(pfd, target); err != nil {
		return fmt.Errorf("whiteout %q: %w", entry, err)
	}
	if a.opts.Whiteouts == WhiteoutsOverlay {
		// overlayfs reads a 0/0 character device as "deleted here".
		if err := unix.Mknodat(pfd, target, unix.S_IFCHR, 0); err != nil {
			return &os.PathError{Op: "mknodat", Path: rel, Err: err}
		}
	}
	return nil
}

func (a *applier) opaque(entry string, pfd int, parentRel string) error {
	fd, err := unix.Openat(pfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: parentRel, Err: err}
	}
	f := os.NewFile(uintptr(fd), parentRel)
	defer f.Close()
	if a.opts.Whiteouts == WhiteoutsOverlay {
		if err := unix.Fsetxattr(fd, "trusted.overlay.opaque", []byte("y"), 0); err != nil {
			return fmt.Errorf("opaque whiteout %q: %w", entry, &os.PathError{Op: "fsetxattr", Path: parentRel, Err: err})
		}
		return nil
	}
	if err := a.clearLower(fd, parentRel); err != nil {
		return fmt.Errorf("opaque whiteout %q: %w", entry, err)
	}
	return nil
}

// clearLower removes from directory fd (at rel) what parent layers put
// there, keeping what this layer wrote. A directory this layer declared
// over an existing one keeps its own entries, but the parent layers' content
// below it goes too: overlayfs would hide it under an opaque directory.
func (a *applier) clearLower(fd int, rel string) error {
	dup, err := unix.Dup(fd)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(dup), rel)
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return err
	}
	for _, n := range names {
		child := n
		if rel != "." {
			child = rel + "/" + n
		}
		if _, ok := a.created[child]; !ok {
			if err := removeAllAt(fd, n); err != nil {
				return err
			}
			continue
		}
		if _, ok := a.keptDirs[child]; !ok {
			continue
		}
		sub, err := unix.Openat(fd, n, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return &os.PathError{Op: "openat", Path: child, Err: err}
		}
		err = a.clearLower(sub, child)
		unix.Close(sub)
		if err != nil {
			return err
		}
	}
	return nil
}

func accessTime(hdr *tar.Header) time.Time {
	if hdr.AccessTime.IsZero() {
		return hdr.ModTime
	}
	return hdr.AccessTime
}

func timespecs(atime, mtime time.Time) [2]unix.Timespec {
	return [2]unix.Timespec{unix.NsecToTimespec(atime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
}

// setTimesFd sets an open file's times (futimens).
func (a *applier) setTimesFd(fd int, name string, atime, mtime time.Time) error {
	ts := timespecs(atime, mtime)
	if err := a.ops.futimens(fd, &ts); err != nil {
		return &os.PathError{Op: "futimens", Path: name, Err: err}
	}
	return nil
}

func (a *applier) setDirTime(d dirTime) error {
	ts := timespecs(d.atime, d.mtime)
	if d.name == "." {
		if err := unix.UtimesNanoAt(a.root.fd, ".", ts[:], 0); err != nil {
			return &os.PathError{Op: "utimensat", Path: ".", Err: err}
		}
		return nil
	}
	parentRel, base := splitName(d.name)
	pfd, err := openInRoot(a.root.fd, parentRel, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		// A later entry or whiteout removed the directory: nothing to do.
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			return nil
		}
		return err
	}
	defer unix.Close(pfd)
	var st unix.Stat_t
	if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil // replaced by a later entry, which set its own times
	}
	if err := unix.UtimesNanoAt(pfd, base, ts[:], unix.AT_SYMLINK_NOFOLLOW); err != nil && err != unix.ENOENT {
		return &os.PathError{Op: "utimensat", Path: d.name, Err: err}
	}
	return nil
}
