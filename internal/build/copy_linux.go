package build

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/errdefs"
	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/patternmatcher"
	"golang.org/x/sys/unix"
)

// srcFile is one file to copy: abs is its host path, resolved inside the
// source root; name is its path below the copy's destination ("" for the
// matched source itself).
type srcFile struct {
	abs  string
	name string
	fi   fs.FileInfo
	link string
	data []byte // inline (heredoc) content or a downloaded file's bytes
}

// srcMatch is one matched source: a file, a directory (its content is
// copied) or, for ADD, an archive to extract.
type srcMatch struct {
	base    string // basename used under a directory destination
	isDir   bool
	archive bool
	files   []srcFile
}

func (sc *stageCtx) copy(ctx context.Context, req copyRequest) error {
	if req.parents {
		return fmt.Errorf("%s --parents: %w", req.verb, errdefs.ErrNotSupported)
	}
	root, release, isContext, err := sc.copySource(ctx, req.from)
	if err != nil {
		return err
	}
	defer release()
	var excl *patternmatcher.PatternMatcher
	if len(req.excludes) > 0 {
		if excl, err = patternmatcher.New(req.excludes); err != nil {
			return errors.Join(errdefs.ErrInvalidArgument, err)
		}
	}
	h := sha256.New()
	var matches []srcMatch
	glob := false
	for _, src := range req.sources {
		if req.add && isURL(src) {
			m, err := sc.download(ctx, src, h)
			if err != nil {
				return err
			}
			matches = append(matches, m)
			continue
		}
		if strings.ContainsAny(src, "*?[") {
			glob = true
		}
		ms, err := collect(root, src, isContext, sc.r.bc, excl, req.add && req.unpack, h)
		if err != nil {
			return err
		}
		matches = append(matches, ms...)
	}
	for _, c := range req.inline {
		data := []byte(c.Data)
		fmt.Fprintf(h, "inline\x00%s\x00%d\x00", c.Path, len(data))
		h.Write(data)
		fi := inlineInfo{name: path.Base(c.Path), size: int64(len(data))}
		matches = append(matches, srcMatch{base: path.Base(c.Path), files: []srcFile{{fi: fi, data: data}}})
	}
	if len(matches) == 0 {
		return fmt.Errorf("no source files were specified: %w", errdefs.ErrNotFound)
	}
	var chmod int64 = -1
	if req.chmod != "" {
		if chmod, err = strconv.ParseInt(req.chmod, 8, 32); err != nil || chmod > 0o7777 {
			return fmt.Errorf("invalid --chmod %q: %w", req.chmod, errdefs.ErrInvalidArgument)
		}
	}
	dest := req.dest
	dirDest := strings.HasSuffix(dest, "/") || strings.HasSuffix(dest, "/.") || len(matches) > 1 || glob
	if !path.IsAbs(dest) {
		wd := sc.st.Config.Config.WorkingDir
		if wd == "" {
			wd = "/"
		}
		dest = path.Join(wd, dest)
	}
	dest = strings.TrimPrefix(path.Clean(dest), "/")
	spec, _ := json.Marshal(req.cmd)
	title := fmt.Sprintf("%s %s", req.verb, strings.Join(append(append([]string{}, req.sources...), req.dest), " "))
	// History names no flags (BuildKit's); the progress line does.
	createdBy := title + " # buildkit"
	if req.link {
		title = strings.Replace(title, " ", " --link ", 1)
	}
	sum := fmt.Sprintf("%x", h.Sum(nil))
	if req.link {
		return sc.copyLinked(ctx, req, linkedCopy{matches: matches, dest: dest, toDir: dirDest || dest == "", chmod: chmod, keepOwner: !isContext, spec: string(spec), sum: sum}, title, createdBy)
	}
	return sc.step(ctx, title, createdBy, []string{string(spec), sum}, func(ctx context.Context, next *state, _ *stepLog) (bool, error) {
		return sc.r.fsStep(ctx, next, func(ctx context.Context, rootfs string) error {
			own := owner{keep: !isContext && req.chown == ""}
			if req.chown != "" {
				var err error
				if own.uid, own.gid, err = resolveChown(rootfs, req.chown); err != nil {
					return err
				}
			}
			toDir := dirDest || dest == "" || isDirIn(rootfs, dest)
			return applyTar(ctx, rootfs, func(tw *tar.Writer) error {
				done := map[string]bool{}
				for _, m := range matches {
					if err := writeMatch(tw, rootfs, m, dest, toDir, own, chmod, done); err != nil {
						return err
					}
				}
				return nil
			})
		})
	})
}

// copySource is the directory COPY reads from: the context, or the rootfs
// of a stage or image (--from), mounted read-only for the step.
func (sc *stageCtx) copySource(ctx context.Context, from string) (root string, release func(), isContext bool, err error) {
	if from == "" {
		if sc.r.bc.dir == "" {
			return "", nil, false, fmt.Errorf("no build context to copy from (Dockerfile given on stdin): %w", errdefs.ErrInvalidArgument)
		}
		return sc.r.bc.dir, func() {}, true, nil
	}
	var st *state
	if j, ok := sc.r.df.stageRef(from, sc.s.idx); ok {
		if st, err = sc.r.waitStage(ctx, j); err != nil {
			return "", nil, false, err
		}
	} else if st, err = sc.r.imageState(ctx, from); err != nil {
		return "", nil, false, err
	}
	dir, release, err := sc.r.viewState(ctx, st)
	return dir, release, false, err
}

// collect resolves one source (a path or a glob, relative to root) to its
// matches, hashing every file's name, type, mode, size, link target and
// content into h (never mtime, so touching a file keeps the cache).
func collect(root, src string, isContext bool, bc *buildContext, excl *patternmatcher.PatternMatcher, unpack bool, h hash.Hash) ([]srcMatch, error) {
	rel := strings.TrimPrefix(path.Clean("/"+src), "/")
	var rels []string
	if strings.ContainsAny(rel, "*?[") {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			r, _ := filepath.Rel(root, p)
			if r == "." {
				return nil
			}
			r = filepath.ToSlash(r)
			if isContext && bc.excluded(r) {
				if d.IsDir() && bc.ignore != nil && !bc.ignore.Exclusions() {
					return filepath.SkipDir
				}
				return nil
			}
			if ok, _ := path.Match(rel, r); ok {
				rels = append(rels, r)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if len(rels) == 0 {
			return nil, fmt.Errorf("lstat %s: no source files were specified: %w", src, errdefs.ErrNotFound)
		}
	} else {
		if isContext && bc.excluded(rel) {
			return nil, fmt.Errorf("%q: not found (excluded by .dockerignore): %w", "/"+rel, errdefs.ErrNotFound)
		}
		rels = []string{rel}
	}
	var out []srcMatch
	for _, r := range rels {
		// Symlinks on the way to a source are followed, inside root: a
		// link to /etc/passwd in the context names <context>/etc/passwd.
		abs, err := securejoin.SecureJoin(root, r)
		if err != nil {
			return nil, err
		}
		fi, err := os.Lstat(abs)
		if err != nil {
			return nil, fmt.Errorf("%q: not found: %w", "/"+r, errdefs.ErrNotFound)
		}
		m := srcMatch{base: path.Base("/" + r), isDir: fi.IsDir()}
		if !fi.IsDir() {
			f := srcFile{abs: abs, fi: fi}
			if fi.Mode()&fs.ModeSymlink != 0 {
				f.link, _ = os.Readlink(abs)
			}
			if unpack && fi.Mode().IsRegular() && isArchive(abs) {
				m.archive = true
			}
			if err := hashFile(h, "/"+r, f, m.archive, !isContext); err != nil {
				return nil, err
			}
			m.files = []srcFile{f}
			out = append(out, m)
			continue
		}
		err = filepath.WalkDir(abs, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			inner, _ := filepath.Rel(abs, p)
			inner = filepath.ToSlash(inner)
			if inner == "." {
				inner = ""
			}
			full := path.Join(r, inner)
			if inner != "" && ((isContext && bc.excluded(full)) || (excl != nil && matches(excl, inner))) {
				if d.IsDir() && (isContext && bc.ignore != nil && !bc.ignore.Exclusions() || excl != nil && !excl.Exclusions()) {
					return filepath.SkipDir
				}
				return nil
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			f := srcFile{abs: p, name: inner, fi: fi}
			if fi.Mode()&fs.ModeSymlink != 0 {
				f.link, _ = os.Readlink(p)
			}
			if err := hashFile(h, "/"+full, f, false, !isContext); err != nil {
				return err
			}
			m.files = append(m.files, f)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("walk %s: %w", "/"+r, err)
		}
		out = append(out, m)
	}
	return out, nil
}

func matches(pm *patternmatcher.PatternMatcher, rel string) bool {
	ok, err := pm.MatchesOrParentMatches(rel)
	return err == nil && ok
}

// withOwner adds the file's owner: it is copied from a stage or image
// (not from the context, whose files become root's).
func hashFile(h hash.Hash, name string, f srcFile, archive, withOwner bool) error {
	fmt.Fprintf(h, "%s\x00%o\x00%d\x00%s\x00%t\x00", name, f.fi.Mode(), f.fi.Size(), f.link, archive)
	if withOwner {
		uid, gid := fileOwner(f.fi)
		fmt.Fprintf(h, "%d:%d\x00", uid, gid)
	}
	if !f.fi.Mode().IsRegular() {
		return nil
	}
	if f.data != nil {
		h.Write(f.data)
		return nil
	}
	r, err := os.OpenFile(f.abs, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer r.Close()
	_, err = io.Copy(h, r)
	return err
}

// writeMatch writes one match's entries under dest. Directory entries are
// written only for directories that do not exist yet, so COPY into /usr
// leaves /usr's owner and mode as the image has them.
func writeMatch(tw *tar.Writer, rootfs string, m srcMatch, dest string, toDir bool, own owner, chmod int64, done map[string]bool) error {
	if m.archive {
		if err := mkdirs(tw, rootfs, dest, 0, 0, done); err != nil {
			return err
		}
		return extractInto(tw, m.files[0].abs, dest)
	}
	for _, f := range m.files {
		var name string
		switch {
		case m.isDir:
			name = path.Join(dest, f.name)
		case toDir:
			name = path.Join(dest, m.base)
		default:
			name = dest
		}
		if name == "" || name == "." {
			continue // the rootfs itself keeps its metadata
		}
		// Missing parents are --chown's, else root's.
		if err := mkdirs(tw, rootfs, path.Dir(name), own.uid, own.gid, done); err != nil {
			return err
		}
		if f.fi.IsDir() {
			if done[name] || exists(rootfs, name) {
				done[name] = true
				continue
			}
			done[name] = true
		}
		hdr, err := tar.FileInfoHeader(f.fi, f.link)
		if err != nil {
			return fmt.Errorf("%s: %w", f.abs, err)
		}
		uid, gid := own.of(f.fi)
		if m.isDir && f.name == "" {
			// The directory a source directory's content goes into
			// is made like a missing parent, as docker build does.
			uid, gid = own.uid, own.gid
		}
		hdr.Name, hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = name, uid, gid, "", ""
		hdr.Format = tar.FormatPAX
		if f.fi.IsDir() {
			hdr.Name += "/"
		}
		if chmod >= 0 && hdr.Typeflag != tar.TypeSymlink {
			hdr.Mode = hdr.Mode&^0o7777 | chmod
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		if f.data != nil {
			if _, err := tw.Write(f.data); err != nil {
				return err
			}
			continue
		}
		r, err := os.OpenFile(f.abs, os.O_RDONLY|unix.O_NOFOLLOW, 0)
		if err != nil {
			return err
		}
		_, err = io.CopyN(tw, r, hdr.Size)
		r.Close()
		if err != nil {
			return fmt.Errorf("%s changed while being copied: %w", f.abs, err)
		}
	}
	return nil
}

// owner is who copied files belong to: root or --chown's user for the
// context's files and with --chown; for COPY --from without --chown, the
// source file's own owner (Docker keeps it).
type owner struct {
	uid, gid int
	keep     bool
}

func (o owner) of(fi fs.FileInfo) (int, int) {
	if o.keep {
		return fileOwner(fi)
	}
	return o.uid, o.gid
}

// fileOwner is a file's uid and gid (0, 0 for files only in memory).
func fileOwner(fi fs.FileInfo) (int, int) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid), int(st.Gid)
	}
	return 0, 0
}

// isArchive sniffs a local ADD source: gzip, bzip2, zstd or xz magic, or a
// tar header ("ustar" at offset 257).
func isArchive(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	b := make([]byte, 512)
	n, _ := io.ReadFull(f, b)
	b = b[:n]
	switch {
	case bytes.HasPrefix(b, []byte{0x1f, 0x8b}), bytes.HasPrefix(b, []byte("BZh")),
		bytes.HasPrefix(b, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return true
	case n >= 262 && bytes.Equal(b[257:262], []byte("ustar")):
		return true
	}
	return false
}

// extractInto re-writes the archive at p with every name moved under dest.
// Names are cleaned as if rooted, so "../../etc/x" becomes dest/etc/x; the
// apply resolves links inside the rootfs in any case.
func extractInto(tw *tar.Writer, p, dest string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	br := bufio.NewReader(f)
	var r io.Reader = br
	if magic, _ := br.Peek(3); bytes.Equal(magic, []byte("BZh")) {
		r = bzip2.NewReader(br)
	} else {
		rc, _, err := archive.Decompress(br)
		if err != nil {
			return fmt.Errorf("ADD %s: %w", filepath.Base(p), err)
		}
		defer rc.Close()
		r = rc
	}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("ADD %s: %w", filepath.Base(p), err)
		}
		hdr.Name = path.Join(dest, strings.TrimPrefix(path.Clean("/"+hdr.Name), "/"))
		if hdr.Typeflag == tar.TypeLink {
			hdr.Linkname = path.Join(dest, strings.TrimPrefix(path.Clean("/"+hdr.Linkname), "/"))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if hdr.Typeflag == tar.TypeReg {
			if _, err := io.Copy(tw, tr); err != nil {
				return err
			}
		}
	}
}

func isURL(s string) bool { return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://") }

// download fetches an ADD URL (never extracted, mode 0600, as Docker). The
// content is hashed, so an unchanged remote file keeps the cache.
func (sc *stageCtx) download(ctx context.Context, src string, h hash.Hash) (srcMatch, error) {
	u, err := url.Parse(src)
	if err != nil {
		return srcMatch{}, errors.Join(errdefs.ErrInvalidArgument, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
	if err != nil {
		return srcMatch{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return srcMatch{}, fmt.Errorf("ADD %s: %w", src, errors.Join(errdefs.ErrUnavailable, err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return srcMatch{}, fmt.Errorf("ADD %s: %s: %w", src, resp.Status, errdefs.ErrNotFound)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<30))
	if err != nil {
		return srcMatch{}, fmt.Errorf("ADD %s: %w", src, err)
	}
	base := path.Base(u.Path)
	if base == "/" || base == "." {
		base = "index.html"
	}
	mt := time.Now()
	if lm, err := http.ParseTime(resp.Header.Get("Last-Modified")); err == nil {
		mt = lm
	}
	fmt.Fprintf(h, "url\x00%s\x00%d\x00", src, len(data))
	h.Write(data)
	fi := inlineInfo{name: base, size: int64(len(data)), mode: 0o600, mtime: mt}
	return srcMatch{base: base, files: []srcFile{{fi: fi, data: data}}}, nil
}

// inlineInfo is the fs.FileInfo of a file that exists only in memory.
type inlineInfo struct {
	name  string
	size  int64
	mode  fs.FileMode
	mtime time.Time
}

func (i inlineInfo) Name() string { return i.name }
func (i inlineInfo) Size() int64  { return i.size }
func (i inlineInfo) Mode() fs.FileMode {
	if i.mode == 0 {
		return 0o644
	}
	return i.mode
}
func (i inlineInfo) ModTime() time.Time { return i.mtime }
func (i inlineInfo) IsDir() bool        { return false }
func (i inlineInfo) Sys() any           { return nil }
