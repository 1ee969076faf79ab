package testutil

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
)

// CLIFixtures is what the packages that drive the berth CLI end to end
// (test/engine, test/build, test/network) share: the binary, its helpers
// beside it, and the busybox fixture image as a tar `berth load` reads.
type CLIFixtures struct {
	// Berth is the berth CLI; berth-monitor and berth-init are beside it
	// (berth finds them there).
	Berth string
	// BusyboxTar is the busybox fixture's OCI layout as a tar.
	BusyboxTar string
}

// SetupCLI prepares CLIFixtures: BerthBinary, the helpers it needs built
// beside it when missing, and the busybox tar in a temporary directory
// named after prefix. The returned cleanup removes what SetupCLI made.
func SetupCLI(prefix string) (_ *CLIFixtures, _ func(), err error) {
	bin, binCleanup, err := BerthBinary()
	if err != nil {
		return nil, nil, fmt.Errorf("build berth: %w", err)
	}
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		binCleanup()
		return nil, nil, err
	}
	cleanup := func() {
		os.RemoveAll(dir)
		binCleanup()
	}
	defer func() {
		if err != nil {
			cleanup()
		}
	}()
	for _, name := range []string{"berth-monitor", "berth-init"} {
		p := filepath.Join(filepath.Dir(bin), name)
		if _, err := os.Stat(p); err == nil {
			continue
		}
		root, err := ModuleRoot()
		if err == nil {
			err = BuildStatic(root, "./cmd/"+name, p)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("build %s: %w", name, err)
		}
	}
	img, err := BusyboxImage()
	if err != nil {
		return nil, nil, fmt.Errorf("busybox image: %w", err)
	}
	f := &CLIFixtures{Berth: bin, BusyboxTar: filepath.Join(dir, "busybox.tar")}
	if err := TarDir(img.Dir, f.BusyboxTar); err != nil {
		return nil, nil, fmt.Errorf("tar busybox layout: %w", err)
	}
	return f, cleanup, nil
}

// TarDir writes the tree under dir (an OCI layout, a build context) as a
// tar with paths relative to dir; symlinks stay symlinks.
func TarDir(dir, out string) error {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if fi.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		h, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		h.Name = rel
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			return nil
		}
		src, err := os.Open(p)
		if err != nil {
			return err
		}
		defer src.Close()
		_, err = io.Copy(tw, src)
		return err
	})
	if err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return f.Close()
}

// RunCmd runs c with stdin and returns its stdout, stderr and exit code.
// err is set only when c could not run at all (not for a non-zero exit).
func RunCmd(c *exec.Cmd, stdin io.Reader) (stdout, stderr string, code int, err error) {
	var out, errb bytes.Buffer
	c.Stdin, c.Stdout, c.Stderr = stdin, &out, &errb
	err = c.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code, err = ee.ExitCode(), nil
	}
	return out.String(), errb.String(), code, err
}
