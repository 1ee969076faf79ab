package archive

import (
	"archive/tar"
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// treeWriter turns directory entries into tar entries. Every lookup is made
// relative to an open directory descriptor with O_NOFOLLOW, so a tree that
// changes underneath (a running container's rootfs during `cp` or `export`)
// cannot make it read outside the tree: a directory swapped for a symlink
// fails to open instead of being followed (the docker cp race,
// CVE-2018-15664).
type treeWriter struct {
	ctx   context.Context
	bw    *bufio.Writer
	tw    *tar.Writer
	buf   *[]byte
	links map[[2]uint64]string
}

func newTreeWriter(ctx context.Context, w io.Writer) *treeWriter {
	bw := bufio.NewWriterSize(w, 256<<10)
	return &treeWriter{ctx: ctx, bw: bw, tw: tar.NewWriter(bw), buf: copyBufs.Get().(*[]byte), links: map[[2]uint64]string{}}
}

func (t *treeWriter) close() error {
	defer copyBufs.Put(t.buf)
	if err := t.tw.Close(); err != nil {
		return err
	}
	return t.bw.Flush()
}

// walk visits the entries below dirfd in lexical order, each directory
// before its content; visit returns whether to descend into a directory.
func (t *treeWriter) walk(dirfd int, rel string, visit func(dirfd int, base, rel string, st *unix.Stat_t) (bool, error)) error {
	dup, err := unix.Dup(dirfd)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(dup), rel)
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return fmt.Errorf("read directory %s: %w", rel, err)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := t.ctx.Err(); err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Fstatat(dirfd, n, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if err == unix.ENOENT {
				continue // removed while we walk
			}
			return &os.PathError{Op: "fstatat", Path: path.Join(rel, n), Err: err}
		}
		r := path.Join(rel, n)
		descend, err := visit(dirfd, n, r, &st)
		if err != nil {
			return err
		}
		if !descend || st.Mode&unix.S_IFMT != unix.S_IFDIR {
			continue
		}
		sub, err := unix.Openat(dirfd, n, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return &os.PathError{Op: "openat", Path: r, Err: err}
		}
		err = t.walk(sub, r, visit)
		unix.Close(sub)
		if err != nil {
			return err
		}
	}
	return nil
}

// header describes base (in dirfd) as a tar entry named name, or returns
// nil for what tar cannot hold (sockets). A regular file whose inode was
// already written becomes a hardlink to the first name.
func (t *treeWriter) header(dirfd int, base, name string, st *unix.Stat_t) (*tar.Header, error) {
	hdr := &tar.Header{
		Name:    name,
		Mode:    int64(st.Mode & 0o7777),
		Uid:     int(st.Uid),
		Gid:     int(st.Gid),
		ModTime: time.Unix(st.Mtim.Unix()),
		Format:  tar.FormatPAX,
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		hdr.Typeflag = tar.TypeDir
		hdr.Name = strings.TrimSuffix(name, "/") + "/"
	case unix.S_IFREG:
		hdr.Typeflag = tar.TypeReg
		hdr.Size = st.Size
		if st.Nlink > 1 {
			key := [2]uint64{uint64(st.Dev), st.Ino}
			if first, ok := t.links[key]; ok {
				hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
				return hdr, nil // xattrs belong to the inode, already written
			}
			t.links[key] = name
		}
	case unix.S_IFLNK:
		hdr.Typeflag = tar.TypeSymlink
		buf := make([]byte, 4096)
		n, err := unix.Readlinkat(dirfd, base, buf)
		if err != nil {
			return nil, &os.PathError{Op: "readlinkat", Path: name, Err: err}
		}
		hdr.Linkname = string(buf[:n])
	case unix.S_IFCHR, unix.S_IFBLK:
		hdr.Typeflag = tar.TypeChar
		if st.Mode&unix.S_IFMT == unix.S_IFBLK {
			hdr.Typeflag = tar.TypeBlock
		}
		hdr.Devmajor, hdr.Devminor = int64(unix.Major(uint64(st.Rdev))), int64(unix.Minor(uint64(st.Rdev)))
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
	default:
		return nil, nil
	}
	recs, err := readXattrs(procPath(dirfd, base))
	if err != nil {
		return nil, err
	}
	hdr.PAXRecords = recs
	return hdr, nil
}

// write writes hdr and, for a regular file, the content of the file that
// open returns (an fd the call closes).
func (t *treeWriter) write(hdr *tar.Header, open func() (int, error)) error {
	if err := t.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("write tar header %s: %w", hdr.Name, err)
	}
	if hdr.Typeflag != tar.TypeReg || hdr.Size == 0 {
		return nil
	}
	fd, err := open()
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), hdr.Name)
	defer f.Close()
	n, err := io.CopyBuffer(struct{ io.Writer }{t.tw}, struct{ io.Reader }{io.LimitReader(f, hdr.Size)}, *t.buf)
	if err != nil {
		return fmt.Errorf("write %s: %w", hdr.Name, err)
	}
	if n != hdr.Size {
		return fmt.Errorf("write %s: file shrank from %d to %d bytes while being read", hdr.Name, hdr.Size, n)
	}
	return nil
}

func openAt(dirfd int, base, name string) func() (int, error) {
	return func() (int, error) {
		fd, err := unix.Openat(dirfd, base, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return -1, &os.PathError{Op: "openat", Path: name, Err: err}
		}
		return fd, nil
	}
}

func tarTree(ctx context.Context, w io.Writer, dir string, opts TarOptions) (retErr error) {
	prefix := strings.Trim(opts.Prefix, "/")
	t := newTreeWriter(ctx, w)
	defer func() {
		if err := t.close(); retErr == nil && err != nil {
			retErr = fmt.Errorf("tar %s: %w", dir, err)
		}
	}()
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return fmt.Errorf("tar: %w", &os.PathError{Op: "lstat", Path: dir, Err: err})
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		// A single file (or symlink, device): one entry.
		pfd, err := unix.Open(filepath.Dir(dir), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("tar: %w", &os.PathError{Op: "open", Path: filepath.Dir(dir), Err: err})
		}
		defer unix.Close(pfd)
		base, name := filepath.Base(dir), prefix
		if name == "" {
			name = filepath.Base(dir)
		}
		hdr, err := t.header(pfd, base, name, &st)
		if err != nil || hdr == nil {
			return err
		}
		return t.write(hdr, openAt(pfd, base, name))
	}
	rootfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("tar: %w", &os.PathError{Op: "open", Path: dir, Err: err})
	}
	defer unix.Close(rootfd)
	if prefix != "" {
		hdr, err := t.header(rootfd, ".", prefix, &st)
		if err != nil {
			return fmt.Errorf("tar %s: %w", dir, err)
		}
		if err := t.write(hdr, nil); err != nil {
			return fmt.Errorf("tar %s: %w", dir, err)
		}
	}
	err = t.walk(rootfd, "", func(dirfd int, base, rel string, st *unix.Stat_t) (bool, error) {
		name := rel
		if prefix != "" {
			name = prefix + "/" + rel
		}
		hdr, err := t.header(dirfd, base, name, st)
		if err != nil || hdr == nil {
			return true, err
		}
		return true, t.write(hdr, openAt(dirfd, base, name))
	})
	if err != nil {
		return fmt.Errorf("tar %s: %w", dir, err)
	}
	return nil
}
