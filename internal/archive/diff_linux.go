package archive

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
)

// overlayfs records its bookkeeping in trusted.overlay.* when mounted by
// root and in user.overlay.* with the userxattr option (rootless).
var overlayNS = []string{"trusted.overlay.", "user.overlay."}

// overlayAttr returns the first overlay bookkeeping xattr attr found on p.
func overlayAttr(p, attr string) (string, bool) {
	for _, ns := range overlayNS {
		if v, err := getXattr(p, ns+attr); err == nil {
			return string(v), true
		}
	}
	return "", false
}

func diff(ctx context.Context, w io.Writer, upper string, lowers []string) (retErr error) {
	t := newTreeWriter(ctx, w)
	defer func() {
		if err := t.close(); retErr == nil && err != nil {
			retErr = fmt.Errorf("diff %s: %w", upper, err)
		}
	}()
	rootfd, err := unix.Open(upper, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("diff: %w", &os.PathError{Op: "open", Path: upper, Err: err})
	}
	defer unix.Close(rootfd)
	d := &differ{t: t, lowers: lowers}
	if err := t.walk(rootfd, "", d.visit); err != nil {
		return fmt.Errorf("diff %s: %w", upper, err)
	}
	return nil
}

type differ struct {
	t      *treeWriter
	lowers []string
}

func (d *differ) visit(dirfd int, base, rel string, st *unix.Stat_t) (bool, error) {
	p := procPath(dirfd, base)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		if st.Rdev == 0 {
			return false, d.whiteout(rel, st)
		}
	case unix.S_IFREG:
		// With xattr whiteouts (nested or rootless overlay) a whiteout is
		// an empty file marked overlay.whiteout.
		if st.Size == 0 {
			if _, ok := overlayAttr(p, "whiteout"); ok {
				return false, d.whiteout(rel, st)
			}
		}
	case unix.S_IFDIR:
		if _, ok := overlayAttr(p, "redirect"); ok {
			// A renamed directory keeps its content in a lower layer under
			// another name; expressing that needs the merged view.
			return false, fmt.Errorf("%s: renamed directory (overlay redirect_dir): %w", rel, errdefs.ErrNotSupported)
		}
	}
	hdr, err := d.t.header(dirfd, base, rel, st)
	if err != nil || hdr == nil {
		return true, err
	}
	open := openAt(dirfd, base, rel)
	// metacopy: the upper file holds only metadata (no blocks); the data is
	// still the lower file's.
	if hdr.Typeflag == tar.TypeReg && st.Blocks == 0 && st.Size > 0 {
		if _, ok := overlayAttr(p, "metacopy"); ok {
			open = d.lowerData(p, rel)
		}
	}
	if err := d.t.write(hdr, open); err != nil {
		return false, err
	}
	if hdr.Typeflag == tar.TypeDir {
		if v, ok := overlayAttr(p, "opaque"); ok && v == "y" {
			opq := &tar.Header{
				Typeflag: tar.TypeReg,
				Name:     path.Join(rel, whiteoutOpaque),
				ModTime:  time.Unix(st.Mtim.Unix()),
				Format:   tar.FormatPAX,
			}
			if err := d.t.write(opq, nil); err != nil {
				return false, err
			}
		}
	}
	return true, nil
}

// whiteout writes `.wh.NAME` for a deleted NAME, unless the lowers are
// known and none holds NAME: then the deletion hides nothing (the file was
// created and removed in this same layer).
func (d *differ) whiteout(rel string, st *unix.Stat_t) error {
	if len(d.lowers) > 0 {
		found := false
		for _, l := range d.lowers {
			var lst unix.Stat_t
			if unix.Lstat(filepath.Join(l, rel), &lst) == nil {
				found = true
				break
			}
		}
		if !found {
			return nil
		}
	}
	dir, base := splitName(rel)
	return d.t.write(&tar.Header{
		Typeflag: tar.TypeReg,
		Name:     path.Join(dir, whiteoutPrefix+base),
		ModTime:  time.Unix(st.Mtim.Unix()),
		Format:   tar.FormatPAX,
	}, nil)
}

// lowerData opens the data of a metacopy file: the path its redirect xattr
// names (absolute from the layer root) or else its own path, in the topmost
// lower that has it.
func (d *differ) lowerData(p, rel string) func() (int, error) {
	return func() (int, error) {
		src := rel
		if v, ok := overlayAttr(p, "redirect"); ok {
			if path.IsAbs(v) {
				src = v
			} else {
				src = path.Join(path.Dir(rel), v)
			}
		}
		for _, l := range d.lowers {
			lfd, err := unix.Open(l, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			if err != nil {
				continue
			}
			fd, err := openInRoot(lfd, src, unix.O_RDONLY|unix.O_NOFOLLOW)
			unix.Close(lfd)
			if err == nil {
				return fd, nil
			}
		}
		return -1, fmt.Errorf("%s: metacopy file without data in any lower: %w", rel, errdefs.ErrNotFound)
	}
}
