package snapshot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth/internal/atomicfile"
	"github.com/berth-dev/berth/internal/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// overlay stacks committed snapshots as overlayfs lower layers under each
// active snapshot's upper directory. Nothing is copied: a layer exists once
// on disk however many images and containers use it.
type overlay struct{ *store }

var _ Snapshotter = (*overlay)(nil)

func newOverlay(root string) (Snapshotter, error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("open overlay snapshotter: %w", err)
	}
	if err := overlaySupported(root); err != nil {
		return nil, fmt.Errorf("open overlay snapshotter on %s: %v: %w", root, err, errdefs.ErrNotSupported)
	}
	s, err := openStore(root, "overlay")
	if err != nil {
		return nil, err
	}
	return &overlay{s}, nil
}

func (o *overlay) Driver() string { return "overlay" }

// OverlayWhiteouts: layers are unpacked as overlayfs upper directories, so
// deletions are 0/0 character devices and opaque directories carry
// trusted.overlay.opaque — exactly what overlayfs reads from a lower layer.
func (o *overlay) OverlayWhiteouts() bool { return true }

// Prepare gives an empty upper directory whatever the parent: the parent's
// files are seen through the lower layers at mount time.
func (o *overlay) Prepare(ctx context.Context, key, parent string, labels map[string]string) (string, error) {
	return o.prepare(ctx, key, parent, labels, true, nil)
}

// Commit accepts any committed parent, not only the one given to Prepare:
// an upper directory does not depend on its lowers, which lets an image's
// layers be unpacked in parallel on empty snapshots and chained at commit.
func (o *overlay) Commit(ctx context.Context, name, key, parent string) error {
	return o.commit(ctx, name, key, parent, nil)
}

func (o *overlay) CommitChain(ctx context.Context, links []ChainLink) (int, error) {
	return o.commitChain(ctx, links, nil)
}

func (o *overlay) Mounts(ctx context.Context, key string) ([]specs.Mount, error) {
	md, err := o.read()
	if err != nil {
		return nil, err
	}
	r, err := o.get(md, key)
	if err != nil {
		return nil, fmt.Errorf("mounts: %w", err)
	}
	lowers, err := o.chain(md, r.Parent)
	if err != nil {
		return nil, fmt.Errorf("mounts of %q: %w", key, err)
	}
	if r.Kind == KindCommitted {
		// Read-only view: the snapshot itself becomes the top lower layer;
		// overlayfs with lower layers only is read-only by construction.
		lowers = append([]string{o.fsDir(r.ID)}, lowers...)
		if len(lowers) == 1 {
			return []specs.Mount{bindMount(lowers[0], "ro")}, nil
		}
		return []specs.Mount{{Type: "overlay", Source: "overlay", Options: []string{
			"index=off", "lowerdir=" + joinLowerdirs(lowers)}}}, nil
	}
	if len(lowers) == 0 {
		return []specs.Mount{bindMount(o.fsDir(r.ID), "rw")}, nil
	}
	return []specs.Mount{{Type: "overlay", Source: "overlay", Options: []string{
		// index=off: a lower layer is shared by many overlays with
		// different uppers; the inode index would tie it to one of them.
		"index=off",
		"lowerdir=" + joinLowerdirs(lowers),
		"upperdir=" + o.fsDir(r.ID),
		"workdir=" + o.workDir(r.ID),
	}}}, nil
}

func bindMount(dir, mode string) specs.Mount {
	return specs.Mount{Type: "bind", Source: dir, Options: []string{"rbind", mode}}
}

// joinLowerdirs escapes the characters overlayfs treats specially in a
// lowerdir list (':' separates layers, '\' escapes, ',' ends the option).
func joinLowerdirs(dirs []string) string {
	esc := strings.NewReplacer(`\`, `\\`, `:`, `\:`, `,`, `\,`)
	out := make([]string, len(dirs))
	for i, d := range dirs {
		out[i] = esc.Replace(d)
	}
	return strings.Join(out, ":")
}

// splitLowerdirs undoes joinLowerdirs.
func splitLowerdirs(s string) []string {
	var (
		dirs []string
		cur  strings.Builder
	)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
		case c == ':':
			dirs = append(dirs, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	return append(dirs, cur.String())
}

// overlaySupported answers, once per root, whether overlayfs mounts there:
// overlayfs refuses some upper filesystems (another overlay, some FUSE or
// network filesystems) and unprivileged callers, and only a real mount
// tells. The answer is cached in <root>/overlay-support; a refusal for lack
// of privilege is not cached, since root may try next.
func overlaySupported(root string) error {
	cache := filepath.Join(root, "overlay-support")
	if b, err := os.ReadFile(cache); err == nil {
		if s := strings.TrimSpace(string(b)); s != "ok" {
			return errors.New(s)
		}
		return nil
	}
	perr := probeOverlay(root)
	if errors.Is(perr, unix.EPERM) {
		return perr
	}
	msg := "ok"
	if perr != nil {
		msg = perr.Error()
	}
	// atomicfile's temporary names are unique: two first-ever berth
	// commands may probe the same fresh root at once, and both renames are
	// then fine.
	if err := atomicfile.Write(cache, []byte(msg+"\n"), 0o600, atomicfile.SyncFile); err != nil {
		return errors.Join(perr, err)
	}
	return perr
}

func probeOverlay(root string) error {
	dir, err := os.MkdirTemp(root, ".overlay-probe-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	sub := func(n string) string { return filepath.Join(dir, n) }
	for _, n := range []string{"l1", "l2", "upper", "work", "merged"} {
		if err := os.Mkdir(sub(n), 0o700); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(sub("l2"), "probe"), nil, 0o600); err != nil {
		return err
	}
	opts := []string{
		"index=off", "lowerdir=" + joinLowerdirs([]string{sub("l1"), sub("l2")}),
		"upperdir=" + sub("upper"), "workdir=" + sub("work")}
	// volatile: unmounting an overlay syncs the whole filesystem under its
	// upper directory (all of /var/lib's dirty pages, not the probe's):
	// measured 24–40 ms on a busy host, in the first command on a root.
	// Kernels before 5.10 refuse the option; they probe without it.
	m := specs.Mount{Type: "overlay", Source: "overlay", Options: append(opts, "volatile")}
	if err := MountAll([]specs.Mount{m}, sub("merged")); err != nil {
		m.Options = opts
		if err := MountAll([]specs.Mount{m}, sub("merged")); err != nil {
			return err
		}
	}
	_, serr := os.Stat(filepath.Join(sub("merged"), "probe"))
	if err := UnmountAll(sub("merged")); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("overlay probe: lower layer not visible: %w", serr)
	}
	return nil
}

// newDefault keeps the driver of existing snapshots, and otherwise prefers
// overlay.
func newDefault(root string) (Snapshotter, error) {
	// A store with active snapshots only (a first pull under way, a
	// container on an image nobody committed) has no metadata.json yet.
	for _, d := range []string{"overlay", "native"} {
		for _, f := range []string{"metadata.json", "active.json"} {
			if _, err := os.Stat(filepath.Join(root, d, f)); err != nil {
				continue
			}
			if d == "overlay" {
				return newOverlay(root)
			}
			return newNative(root)
		}
	}
	s, err := newOverlay(root)
	if errors.Is(err, errdefs.ErrNotSupported) {
		return newNative(root)
	}
	return s, err
}
