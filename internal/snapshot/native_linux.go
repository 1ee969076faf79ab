package snapshot

import (
	"context"
	"fmt"

	"github.com/berth-dev/berth/internal/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// native gives every snapshot a full copy of its parent's tree, made with
// reflinks where the filesystem shares extents and in-kernel copies
// otherwise. It works on any filesystem, including ones overlayfs refuses.
type native struct{ *store }

var _ Snapshotter = (*native)(nil)

func newNative(root string) (Snapshotter, error) {
	s, err := openStore(root, "native")
	if err != nil {
		return nil, err
	}
	return &native{s}, nil
}

func (n *native) Driver() string { return "native" }

// OverlayWhiteouts is false: a layer is applied onto a copy of its parent,
// so its deletions are real deletions.
func (n *native) OverlayWhiteouts() bool { return false }

func (n *native) Prepare(ctx context.Context, key, parent string, labels map[string]string) (string, error) {
	return n.prepare(ctx, key, parent, labels, false, func(fsDir string, p *record) error {
		if p == nil {
			return nil
		}
		return copyTree(ctx, n.fsDir(p.ID), fsDir)
	})
}

// Commit requires the parent the snapshot was prepared on: its directory is
// a copy of exactly that parent.
func (n *native) Commit(ctx context.Context, name, key, parent string) error {
	return n.commit(ctx, name, key, parent, preparedOn)
}

func (n *native) CommitChain(ctx context.Context, links []ChainLink) (int, error) {
	return n.commitChain(ctx, links, preparedOn)
}

func preparedOn(r *record, parent string) error {
	if r.Parent != parent {
		return fmt.Errorf("native snapshot was prepared on %q, not %q: %w", r.Parent, parent, errdefs.ErrInvalidArgument)
	}
	return nil
}

// Mounts is a bind mount of the snapshot's own complete tree, read-only for
// a committed snapshot.
func (n *native) Mounts(ctx context.Context, key string) ([]specs.Mount, error) {
	md, err := n.read()
	if err != nil {
		return nil, err
	}
	r, err := n.get(md, key)
	if err != nil {
		return nil, fmt.Errorf("mounts: %w", err)
	}
	mode := "rw"
	if r.Kind == KindCommitted {
		mode = "ro"
	}
	return []specs.Mount{bindMount(n.fsDir(r.ID), mode)}, nil
}
