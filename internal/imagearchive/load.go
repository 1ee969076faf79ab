package imagearchive

import (
	"archive/tar"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

const (
	// maxMetaSize bounds the members Load keeps in memory (manifest.json,
	// index.json, oci-layout, repositories) and the JSON blobs it reads back
	// (configs, manifests): real ones are kilobytes, a hostile one must not
	// exhaust memory.
	maxMetaSize = 16 << 20
	// maxLinkHops bounds symlink chains between members.
	maxLinkHops = 16
)

// metaMembers are the archive-level files Load reads after the tar ends
// (members come in any order, and manifest.json may follow the layers).
var metaMembers = map[string]bool{
	"manifest.json": true,
	"index.json":    true,
	"oci-layout":    true,
	"repositories":  true,
}

// archiveContents is what one pass over the tar learned: every regular
// member went into the content store as it streamed by (its descriptor is
// kept by member name), except the few small metadata files.
type archiveContents struct {
	blobs   map[string]ocispec.Descriptor // member name → stored blob
	digests map[digest.Digest]bool        // every digest stored from this archive
	meta    map[string][]byte             // metaMembers found
	links   map[string]string             // link member → member it names
}

func (l *loader) load(r io.Reader) ([]Entry, error) {
	rc, _, err := archive.Decompress(r)
	if err != nil {
		return nil, fmt.Errorf("load: %w: %v", errdefs.ErrInvalidArgument, err)
	}
	defer rc.Close()
	ac, err := l.scan(tar.NewReader(rc))
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	var entries []Entry
	switch {
	case ac.meta["manifest.json"] != nil:
		// Docker 25+ archives also hold index.json; docker load reads
		// manifest.json, and so do we: it carries the RepoTags.
		entries, err = l.dockerEntries(ac)
	case ac.meta["index.json"] != nil:
		entries, err = l.ociEntries(ac)
	default:
		err = fmt.Errorf("%w: neither manifest.json (docker-archive) nor index.json (OCI layout) in archive", errdefs.ErrInvalidArgument)
	}
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	return entries, nil
}

type loader struct {
	ctx context.Context
	cs  *content.Store
}

// scan reads every member once. Names are checked before anything is
// stored: an absolute path or a `..` component marks the archive hostile.
// Links are recorded and resolved only among members (never on the host
// filesystem), so a link pointing outside the archive cannot be followed;
// it is refused outright.
func (l *loader) scan(tr *tar.Reader) (*archiveContents, error) {
	ac := &archiveContents{
		blobs:   map[string]ocispec.Descriptor{},
		digests: map[digest.Digest]bool{},
		meta:    map[string][]byte{},
		links:   map[string]string{},
	}
	for {
		if err := l.ctx.Err(); err != nil {
			return nil, err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read archive: %w: %v", errdefs.ErrInvalidArgument, err)
		}
		name, err := memberName(hdr.Name)
		if err != nil {
			return nil, err
		}
		switch hdr.Typeflag {
		case tar.TypeDir, tar.TypeXGlobalHeader:
			continue
		case tar.TypeSymlink, tar.TypeLink:
			target, err := linkTarget(name, hdr)
			if err != nil {
				return nil, err
			}
			ac.links[name] = target
			continue
		case tar.TypeReg:
		default:
			return nil, fmt.Errorf("member %q: %w: unexpected type %q", hdr.Name, errdefs.ErrInvalidArgument, hdr.Typeflag)
		}
		if metaMembers[name] {
			if hdr.Size > maxMetaSize {
				return nil, fmt.Errorf("member %q: %w: %d bytes is too large", hdr.Name, errdefs.ErrInvalidArgument, hdr.Size)
			}
			b, err := io.ReadAll(tr)
			if err != nil {
				return nil, fmt.Errorf("member %q: %w: %v", hdr.Name, errdefs.ErrInvalidArgument, err)
			}
			ac.meta[name] = b
			continue
		}
		if isLegacyV1Metadata(name) {
			continue
		}
		desc, err := l.ingest(name, hdr.Size, tr)
		if err != nil {
			return nil, fmt.Errorf("member %q: %w", hdr.Name, err)
		}
		ac.blobs[name] = desc
		ac.digests[desc.Digest] = true
	}
	return ac, nil
}

// memberName validates and cleans a member name ("./a//b" → "a/b").
func memberName(raw string) (string, error) {
	if strings.HasPrefix(raw, "/") {
		return "", fmt.Errorf("member %q: %w: absolute path", raw, errdefs.ErrInvalidArgument)
	}
	for _, part := range strings.Split(raw, "/") {
		if part == ".." {
			return "", fmt.Errorf("member %q: %w: path escapes the archive", raw, errdefs.ErrInvalidArgument)
		}
	}
	name := path.Clean(raw)
	if name == "." || strings.ContainsRune(name, 0) {
		return "", fmt.Errorf("member %q: %w: invalid name", raw, errdefs.ErrInvalidArgument)
	}
	return name, nil
}

// linkTarget returns the member a link names. Symlink targets are relative
// to the link's directory (old docker archives link duplicate layers as
// ../<id>/layer.tar); hardlink targets are archive paths.
func linkTarget(name string, hdr *tar.Header) (string, error) {
	t := hdr.Linkname
	if strings.HasPrefix(t, "/") {
		return "", fmt.Errorf("member %q: %w: link to absolute path %q", hdr.Name, errdefs.ErrInvalidArgument, t)
	}
	if hdr.Typeflag == tar.TypeSymlink {
		t = path.Join(path.Dir(name), t)
	} else {
		t = path.Clean(t)
	}
	if t == ".." || strings.HasPrefix(t, "../") || t == "." {
		return "", fmt.Errorf("member %q: %w: link %q points outside the archive", hdr.Name, errdefs.ErrInvalidArgument, hdr.Linkname)
	}
	return t, nil
}

// isLegacyV1Metadata reports the per-layer files of the classic layout
// (<id>/json, <id>/VERSION) that nothing reads: skipping them saves a
// durable store write each.
func isLegacyV1Metadata(name string) bool {
	dir, base := path.Split(name)
	return dir != "" && (base == "json" || base == "VERSION")
}

// blobDigest returns the digest a member's path promises (blobs/sha256/<hex>).
func blobDigest(name string) (digest.Digest, bool) {
	parts := strings.Split(name, "/")
	if len(parts) != 3 || parts[0] != "blobs" {
		return "", false
	}
	d := digest.NewDigestFromEncoded(digest.Algorithm(parts[1]), parts[2])
	if d.Validate() != nil {
		return "", false
	}
	return d, true
}

// ingest streams one member into the store. A member whose path names its
// digest is verified against it by the store; any other member (classic
// <id>/layer.tar, <hex>.json) is hashed by the store as it is written. Nothing is held
// in memory beyond a copy buffer.
func (l *loader) ingest(name string, size int64, r io.Reader) (ocispec.Descriptor, error) {
	if d, ok := blobDigest(name); ok {
		desc := ocispec.Descriptor{Digest: d, Size: size}
		w, err := l.cs.Writer(l.ctx, "", desc)
		if errdefs.IsAlreadyExists(err) {
			return desc, nil // the tar reader skips the unread rest
		}
		if err != nil {
			return ocispec.Descriptor{}, err
		}
		defer w.Close()
		if _, err := io.Copy(w, ctxReader{l.ctx, r}); err != nil {
			return ocispec.Descriptor{}, err
		}
		if _, err := w.Commit(l.ctx); err != nil && !errdefs.IsAlreadyExists(err) {
			return ocispec.Descriptor{}, err
		}
		return desc, nil
	}
	w, err := l.cs.Writer(l.ctx, ingestRef(), ocispec.Descriptor{})
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	defer w.Close()
	if _, err := io.Copy(w, ctxReader{l.ctx, r}); err != nil {
		return ocispec.Descriptor{}, err
	}
	desc, err := w.Commit(l.ctx)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	return ocispec.Descriptor{Digest: desc.Digest, Size: desc.Size}, nil
}

// ingestRef names an ingest whose digest is not known yet; random, so two
// loads of the same archive do not contend for one ingest.
func ingestRef() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux
	return "imagearchive-" + hex.EncodeToString(b[:])
}

// resolve returns the blob a member name refers to, following links among
// members.
func (ac *archiveContents) resolve(ref, name string) (ocispec.Descriptor, error) {
	clean, err := memberName(name)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("%s: %w", ref, err)
	}
	cur := clean
	for range maxLinkHops {
		if d, ok := ac.blobs[cur]; ok {
			return d, nil
		}
		next, ok := ac.links[cur]
		if !ok {
			return ocispec.Descriptor{}, fmt.Errorf("%s references member %q: %w: not in archive", ref, name, errdefs.ErrInvalidArgument)
		}
		cur = next
	}
	return ocispec.Descriptor{}, fmt.Errorf("%s references member %q: %w: too many links", ref, name, errdefs.ErrInvalidArgument)
}

// ctxReader makes long copies stop when ctx is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
