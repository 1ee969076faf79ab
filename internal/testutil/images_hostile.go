package testutil

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// HostileImage is a crafted image that berth must refuse, or (where the
// attack can be defused that way) contain inside the image's filesystem,
// without touching the host. Each is the busybox layer plus the attack.
type HostileImage struct {
	Name   string
	Attack string // what it tries, for test messages
	Layout *ImageLayout
	// Raw: the layout's blobs contradict its manifest (wrong digest,
	// truncated), so no registry takes a push: serve the layout as it is.
	Raw bool
	// MustReject: pulling (or running) must fail. Otherwise containment is
	// an acceptable answer too.
	MustReject bool
	// HostPaths must not exist on the host afterwards (escape targets).
	HostPaths []string
}

// GzipBombSize is the uncompressed size of the gzip-bomb layer's one file
// (its blob is a few MB). Tests set berth's unpack limit well below it.
const GzipBombSize = 2 << 30

// HostileImages builds (or finds cached) the hostile test images.
func HostileImages() ([]HostileImage, error) {
	rootfs, err := BusyboxRootfs()
	if err != nil {
		return nil, err
	}
	const climb = "../../../../../../../../../.."
	file := func(name, content string) func(*tar.Writer) error {
		return func(tw *tar.Writer) error { return tarFile(tw, name, 0o644, []byte(content)) }
	}
	link := func(typ byte, name, target string) func(*tar.Writer) error {
		return func(tw *tar.Writer) error {
			return tw.WriteHeader(&tar.Header{Typeflag: typ, Name: name, Linkname: target, Mode: 0o777, ModTime: imageCreated})
		}
	}
	images := []struct {
		HostileImage
		layers []func(*tar.Writer) error
		// tamper rewrites the last layer's blob (Raw images).
		tamper func(w *layoutWriter, last layer) error
	}{
		{HostileImage: HostileImage{Name: "traversal", Attack: "entry " + climb + "/tmp/berth-hostile-traversal",
			MustReject: true, HostPaths: []string{"/tmp/berth-hostile-traversal"}},
			layers: []func(*tar.Writer) error{file(climb+"/tmp/berth-hostile-traversal", "escaped\n")}},
		{HostileImage: HostileImage{Name: "symlink", Attack: "symlinks to /tmp (absolute and ../), then files written through them by the next layer",
			HostPaths: []string{"/tmp/berth-hostile-symlink-abs", "/tmp/berth-hostile-symlink-rel"}},
			layers: []func(*tar.Writer) error{
				func(tw *tar.Writer) error {
					return errors.Join(link(tar.TypeSymlink, "escape", "/tmp")(tw), link(tar.TypeSymlink, "up", climb+"/tmp")(tw))
				},
				func(tw *tar.Writer) error {
					return errors.Join(file("escape/berth-hostile-symlink-abs", "escaped\n")(tw), file("up/berth-hostile-symlink-rel", "escaped\n")(tw))
				},
			}},
		{HostileImage: HostileImage{Name: "hardlink", Attack: "hardlink to " + climb + "/etc/passwd", MustReject: true},
			layers: []func(*tar.Writer) error{link(tar.TypeLink, "passwd-link", climb+"/etc/passwd")}},
		{HostileImage: HostileImage{Name: "hardlink-abs", Attack: "hardlink to /etc/passwd (absolute: the image's own, in a lower layer)"},
			layers: []func(*tar.Writer) error{link(tar.TypeLink, "passwd-link", "/etc/passwd")}},
		{HostileImage: HostileImage{Name: "gzip-bomb", Attack: fmt.Sprintf("a %d-byte file of zeros in a small gzip layer", GzipBombSize), MustReject: true},
			layers: []func(*tar.Writer) error{func(tw *tar.Writer) error {
				if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "bomb", Mode: 0o644, Size: GzipBombSize, ModTime: imageCreated}); err != nil {
					return err
				}
				_, err := io.CopyN(tw, zeros{}, GzipBombSize)
				return err
			}}},
		{HostileImage: HostileImage{Name: "wrong-digest", Attack: "a layer blob whose bytes do not match its digest (same size)", Raw: true, MustReject: true},
			layers: []func(*tar.Writer) error{file("berth-wrong-digest", "original\n")},
			tamper: func(w *layoutWriter, last layer) error {
				other, err := buildLayer(w.dir, file("berth-wrong-digest", "tampered\n"))
				if err != nil {
					return err
				}
				if other.desc.Size != last.desc.Size {
					return fmt.Errorf("wrong-digest: tampered layer is %d bytes, original %d", other.desc.Size, last.desc.Size)
				}
				return os.Rename(blobPath(w.dir, other.desc.Digest), blobPath(w.dir, last.desc.Digest))
			}},
		{HostileImage: HostileImage{Name: "truncated", Attack: "a layer blob cut to half its size", Raw: true, MustReject: true},
			layers: []func(*tar.Writer) error{file("berth-truncated", strings.Repeat("truncated\n", 1000))},
			tamper: func(w *layoutWriter, last layer) error {
				return os.Truncate(blobPath(w.dir, last.desc.Digest), last.desc.Size/2)
			}},
	}
	var out []HostileImage
	for _, hi := range images {
		l, err := imageFixture("hostile-"+hi.Name, rootfs, func(w *layoutWriter) error {
			base, err := buildLayer(w.dir, func(tw *tar.Writer) error { return addTree(tw, rootfs, func(string) bool { return true }) })
			if err != nil {
				return err
			}
			w.add(base, "COPY busybox-rootfs /")
			var last layer
			for _, fill := range hi.layers {
				if last, err = buildLayer(w.dir, fill); err != nil {
					return err
				}
				w.add(last, "hostile: "+hi.Name)
			}
			if hi.tamper != nil {
				if err := hi.tamper(w, last); err != nil {
					return err
				}
			}
			return w.finish(ocispec.ImageConfig{Env: []string{defaultPath}, Cmd: []string{"sh"}})
		})
		if err != nil {
			return nil, err
		}
		hi.Layout = l
		out = append(out, hi.HostileImage)
	}
	return out, nil
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
