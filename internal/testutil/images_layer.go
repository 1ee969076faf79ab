package testutil

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// layer is a gzip layer blob written into a layout.
type layer struct {
	desc     ocispec.Descriptor
	diffID   digest.Digest
	unpacked int64 // uncompressed tar bytes
}

// buildLayer writes the tar that fill produces, gzip-compressed, into the
// layout's blobs, hashing both the compressed (digest) and uncompressed
// (DiffID) streams on the way.
func buildLayer(layoutDir string, fill func(*tar.Writer) error) (layer, error) {
	f, err := os.CreateTemp(filepath.Join(layoutDir, "blobs", "sha256"), ".layer.")
	if err != nil {
		return layer{}, err
	}
	defer func() {
		f.Close()
		os.Remove(f.Name()) // gone after the rename; removes a failed layer
	}()
	blob := &hashCounter{h: sha256.New()}
	gz := gzip.NewWriter(io.MultiWriter(f, blob))
	diff := &hashCounter{h: sha256.New()}
	tw := tar.NewWriter(io.MultiWriter(gz, diff))
	if err := fill(tw); err != nil {
		return layer{}, err
	}
	for _, c := range []io.Closer{tw, gz, f} {
		if err := c.Close(); err != nil {
			return layer{}, err
		}
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil { // CreateTemp made it 0600
		return layer{}, err
	}
	l := layer{
		desc: ocispec.Descriptor{
			MediaType: ocispec.MediaTypeImageLayerGzip,
			Digest:    digest.NewDigest(digest.SHA256, blob.h),
			Size:      blob.n,
		},
		diffID:   digest.NewDigest(digest.SHA256, diff.h),
		unpacked: diff.n,
	}
	return l, os.Rename(f.Name(), blobPath(layoutDir, l.desc.Digest))
}

type hashCounter struct {
	h hash.Hash
	n int64
}

func (c *hashCounter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return c.h.Write(p)
}

// addTree writes the entries of rootfs for which keep(rel) holds, each
// preceded by its parent directories (a layer must carry the directories it
// writes into, with their real owner and mode). Lexical order; /dev, /proc
// and /sys are kept empty, as images have them.
func addTree(tw *tar.Writer, rootfs string, keep func(rel string) bool) error {
	written := map[string]bool{}
	links := map[uint64]string{} // inode → first name, for hardlinks
	var ensure func(rel string) error
	ensure = func(rel string) error {
		if rel == "." || written[rel] {
			return nil
		}
		if err := ensure(filepath.Dir(rel)); err != nil {
			return err
		}
		written[rel] = true
		return addEntry(tw, rootfs, rel, links)
	}
	return filepath.WalkDir(rootfs, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(rootfs, path)
		if err != nil || rel == "." || rel == ".fixture-stamp" || d.Type()&fs.ModeSocket != 0 {
			return err
		}
		if dir := filepath.Dir(rel); dir == "dev" || dir == "proc" || dir == "sys" {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if !keep(rel) {
			return nil
		}
		return ensure(rel)
	})
}

// addEntry writes rootfs/rel's header (and content for a regular file). A
// file whose inode links already saw becomes a hardlink to that name.
func addEntry(tw *tar.Writer, rootfs, rel string, links map[uint64]string) error {
	path := filepath.Join(rootfs, rel)
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	var target string
	if fi.Mode()&fs.ModeSymlink != 0 {
		if target, err = os.Readlink(path); err != nil {
			return err
		}
	}
	hdr, err := tar.FileInfoHeader(fi, target)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	hdr.Name = filepath.ToSlash(rel)
	if fi.IsDir() {
		hdr.Name += "/"
	}
	// Host user names and access times would make the bytes host-dependent.
	hdr.Uname, hdr.Gname = "", ""
	hdr.ModTime = hdr.ModTime.Truncate(time.Second)
	hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && fi.Mode().IsRegular() && st.Nlink > 1 && links != nil {
		if first, ok := links[st.Ino]; ok {
			hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
			return tw.WriteHeader(hdr)
		}
		links[st.Ino] = hdr.Name
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(tw, f)
	return err
}

func tarFile(tw *tar.Writer, name string, mode int64, data []byte) error {
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), ModTime: imageCreated}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err := tw.Write(data)
	return err
}
