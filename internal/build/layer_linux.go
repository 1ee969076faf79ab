package build

import (
	"archive/tar"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/snapshot"
	securejoin "github.com/cyphar/filepath-securejoin"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// emptyTarSize is what archive.Diff writes for an upper directory without
// changes: the two zero blocks that end a tar.
const emptyTarSize = 1024

// fsStep runs op on the state's rootfs (an active overlay snapshot on the
// state's layers, mounted at a temporary directory), then turns the
// snapshot's upper directory into a layer: the diff tar, gzip-compressed
// into the content store, and the snapshot itself committed under the new
// chain ID (the upper directory is already the layer in overlay form, so it
// is not unpacked again). No change: no layer (empty=true). Whatever fails,
// the mount and the active snapshot are removed.
func (r *buildRun) fsStep(ctx context.Context, next *state, op func(ctx context.Context, rootfs string) error) (empty bool, retErr error) {
	sn := r.b.Images.Snapshotter()
	parent := next.chainID()
	key := "build-" + randomID()
	if _, err := sn.Prepare(ctx, key, parent, nil); err != nil {
		return false, fmt.Errorf("prepare rootfs: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			_ = sn.Remove(context.WithoutCancel(ctx), key)
		}
	}()
	if err := r.withMounted(ctx, key, op); err != nil {
		return false, err
	}
	upper, err := sn.UpperDir(ctx, key)
	if err != nil {
		return false, err
	}
	lowers, err := sn.LowerDirs(ctx, key)
	if err != nil {
		return false, err
	}
	tmpDir, err := r.tmpDir()
	if err != nil {
		return false, err
	}
	tmp, err := os.CreateTemp(tmpDir, "layer-")
	if err != nil {
		return false, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	blob := digest.SHA256.Digester()
	cw := &countWriter{w: io.MultiWriter(tmp, blob.Hash())}
	zw, err := archive.Compress(cw, archive.Gzip)
	if err != nil {
		return false, err
	}
	diffID := digest.SHA256.Digester()
	uw := &countWriter{w: io.MultiWriter(zw, diffID.Hash())}
	if err := archive.Diff(ctx, uw, upper, lowers); err != nil {
		return false, fmt.Errorf("diff: %w", err)
	}
	if err := zw.Close(); err != nil {
		return false, err
	}
	if uw.n <= emptyTarSize {
		return true, nil
	}
	layer := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: blob.Digest(), Size: cw.n}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return false, err
	}
	if err := r.b.Images.Content().WriteBlob(ctx, layer, tmp); err != nil {
		return false, fmt.Errorf("write layer: %w", err)
	}
	next.Config.RootFS.Type = "layers"
	next.Config.RootFS.DiffIDs = append(next.Config.RootFS.DiffIDs, diffID.Digest())
	next.Layers = append(next.Layers, layer)
	if err := archive.SyncDir(upper); err != nil {
		return false, fmt.Errorf("sync layer: %w", err)
	}
	if err := sn.Commit(ctx, next.chainID(), key, parent); err != nil && !errdefs.IsAlreadyExists(err) {
		return false, fmt.Errorf("commit layer: %w", err)
	}
	committed = true
	return false, nil
}

// withMounted mounts snapshot key at a temporary directory for fn and
// unmounts it, also on failure.
func (r *buildRun) withMounted(ctx context.Context, key string, fn func(ctx context.Context, rootfs string) error) error {
	sn := r.b.Images.Snapshotter()
	mounts, err := sn.Mounts(ctx, key)
	if err != nil {
		return err
	}
	tmpDir, err := r.tmpDir()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp(tmpDir, "rootfs-")
	if err != nil {
		return err
	}
	defer os.Remove(dir)
	if err := snapshot.MountAll(mounts, dir); err != nil {
		return fmt.Errorf("mount rootfs: %w", err)
	}
	defer func() { _ = snapshot.UnmountAll(dir) }()
	return fn(ctx, dir)
}

// viewState mounts a state's rootfs (for COPY --from and RUN --mount
// from=) on a throwaway active snapshot; release unmounts and removes it.
func (r *buildRun) viewState(ctx context.Context, st *state) (dir string, release func(), err error) {
	sn := r.b.Images.Snapshotter()
	tmpDir, err := r.tmpDir()
	if err != nil {
		return "", nil, err
	}
	dir, err = os.MkdirTemp(tmpDir, "view-")
	if err != nil {
		return "", nil, err
	}
	key := "build-view-" + randomID()
	if _, err := sn.Prepare(ctx, key, st.chainID(), nil); err != nil {
		os.Remove(dir)
		return "", nil, fmt.Errorf("prepare view: %w", err)
	}
	mounts, err := sn.Mounts(ctx, key)
	if err == nil {
		err = snapshot.MountAll(mounts, dir)
	}
	if err != nil {
		_ = sn.Remove(ctx, key)
		os.Remove(dir)
		return "", nil, fmt.Errorf("mount view: %w", err)
	}
	return dir, func() {
		_ = snapshot.UnmountAll(dir)
		_ = sn.Remove(context.WithoutCancel(ctx), key)
		_ = os.Remove(dir)
	}, nil
}

// workdir creates the working directory (owned by the stage's USER, as
// BuildKit does) and sets it in the config.
func (sc *stageCtx) workdir(ctx context.Context, wd string) error {
	user := sc.st.Config.Config.User
	return sc.step(ctx, "WORKDIR "+wd, "WORKDIR "+wd, []string{user}, func(ctx context.Context, next *state, _ *stepLog) (bool, error) {
		next.Config.Config.WorkingDir = wd
		return sc.r.fsStep(ctx, next, func(ctx context.Context, rootfs string) error {
			uid, gid := 0, 0
			if user != "" {
				var err error
				if uid, gid, err = resolveChown(rootfs, user); err != nil {
					return err
				}
			}
			return applyTar(ctx, rootfs, func(tw *tar.Writer) error {
				return mkdirs(tw, rootfs, strings.TrimPrefix(wd, "/"), uid, gid, map[string]bool{})
			})
		})
	})
}

// applyTar applies the tar fill writes into rootfs with archive.Apply,
// which resolves every name inside rootfs.
func applyTar(ctx context.Context, rootfs string, fill func(tw *tar.Writer) error) error {
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		err := fill(tw)
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	_, err := archive.Apply(ctx, rootfs, pr, archive.ApplyOptions{Whiteouts: archive.WhiteoutsApply})
	pr.CloseWithError(err)
	return err
}

// mkdirs writes directory entries for the components of rel (relative to
// rootfs) that do not exist yet, so existing directories keep their
// metadata. done remembers what was already written.
func mkdirs(tw *tar.Writer, rootfs, rel string, uid, gid int, done map[string]bool) error {
	rel = path.Clean(rel)
	if rel == "." || rel == "/" || rel == "" {
		return nil
	}
	var p string
	for _, c := range strings.Split(rel, "/") {
		p = path.Join(p, c)
		if done[p] {
			continue
		}
		done[p] = true
		// Resolve as Apply will (symlinks followed inside rootfs): a
		// component that is a symlink to a missing directory makes
		// that directory, where the link points, as Docker does.
		resolved, err := securejoin.SecureJoin(rootfs, p)
		if err != nil {
			return err
		}
		if _, err := os.Lstat(resolved); err == nil {
			continue
		}
		name, err := filepath.Rel(rootfs, resolved)
		if err != nil || strings.HasPrefix(name, "..") {
			return fmt.Errorf("%s resolves outside the rootfs", p)
		}
		if name = filepath.ToSlash(name); name != p {
			if err := mkdirs(tw, rootfs, name, uid, gid, done); err != nil {
				return err
			}
			continue
		}
		hdr := &tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: 0o755, Uid: uid, Gid: gid, ModTime: time.Now()}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
	}
	return nil
}

// exists reports whether rel exists in rootfs, resolving symlinks inside it.
func exists(rootfs, rel string) bool {
	p, err := securejoin.SecureJoin(rootfs, rel)
	if err != nil {
		return false
	}
	_, err = os.Lstat(p)
	return err == nil
}

func isDirIn(rootfs, rel string) bool {
	p, err := securejoin.SecureJoin(rootfs, rel)
	if err != nil {
		return false
	}
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

func randomID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

var _ = image.ChainIDs
