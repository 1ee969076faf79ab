package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Container processes start from our own binary (the init re-executes it),
// and that is an attack surface: a process inside the container can open
// /proc/PID/exe of a process that runs our binary (an init before its
// execve, an exec'd process, or one a hostile image tricks into
// re-executing /proc/self/exe) and, once that process has gone, reopen it
// for writing — overwriting the host's berth-runtime (CVE-2019-5736 against
// runc). So child processes never run the host file through a writable
// path. Two ways, fastest first:
//
//   - a read-only bind mount of the binary, made once per binary version in
//     exeCacheDir and reused: /proc/PID/exe then resolves through a
//     read-only mount in the host's mount namespace, which nothing in the
//     container can remount, so a write fails with EROFS. It costs two
//     stat calls per container.
//   - a sealed memfd copy (what runc does), where bind mounts are not
//     possible (no CAP_SYS_ADMIN): the seals forbid any write. It costs a
//     copy of the binary per container, ~4 ms here.
//
// The cache is collected when a new version is mounted (selfexe_gc_linux.go).
const exeCacheDir = "/run/berth-runtime-exe"

func selfExe() (*os.File, error) {
	if f, err := boundExe(); err == nil {
		return f, nil
	}
	return memfdExe()
}

func boundExe() (*os.File, error) {
	var self unix.Stat_t
	if err := unix.Stat("/proc/self/exe", &self); err != nil {
		return nil, err
	}
	name := filepath.Join(exeCacheDir, fmt.Sprintf("%x-%x-%x", self.Dev, self.Ino, self.Ctim.Nano()))
	if f, err := openBound(name, &self); err == nil {
		return f, nil
	}
	if err := os.MkdirAll(exeCacheDir, 0o700); err != nil {
		return nil, err
	}
	// One runtime at a time makes the mount: two first runs of a new
	// binary at once would each mount it, the second on top of the first,
	// and a file with a mount stacked on its bind mount cannot be
	// unlinked (EBUSY) — the binary could then be neither deleted nor
	// replaced until someone unmounted both by hand.
	unlock, err := lockExeCache()
	if err != nil {
		return nil, err
	}
	defer unlock()
	if f, err := openBound(name, &self); err == nil {
		return f, nil // another runtime mounted it while we waited
	}
	gcBoundExes(exeCacheDir, exeCacheIdleMax)
	if err := mountBound("/proc/self/exe", name); err != nil {
		return nil, err
	}
	return openBound(name, &self)
}

// mountBound makes name a read-only bind mount of the binary src.
func mountBound(src, name string) error {
	fd, err := unix.Open(name, unix.O_CREAT|unix.O_RDONLY|unix.O_CLOEXEC, 0o500)
	if err != nil {
		return err
	}
	unix.Close(fd)
	if err := unix.Mount(src, name, "", unix.MS_BIND, ""); err != nil {
		return &os.PathError{Op: "bind mount", Path: name, Err: err}
	}
	// mount(2) ignores MS_RDONLY when it makes a bind mount: read-only
	// takes a remount of the new mount alone.
	if err := unix.Mount("", name, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		_ = unix.Unmount(name, unix.MNT_DETACH)
		return &os.PathError{Op: "remount read-only", Path: name, Err: err}
	}
	return nil
}

// lockExeCache takes the cache's lock (flock: released by the kernel if
// the holder dies).
func lockExeCache() (unlock func(), err error) {
	fd, err := unix.Open(filepath.Join(exeCacheDir, ".lock"), unix.O_CREAT|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(fd, unix.LOCK_EX); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return func() { unix.Close(fd) }, nil
}

// openBound opens the cached binary if it is our binary on a read-only mount.
func openBound(name string, self *unix.Stat_t) (*os.File, error) {
	f, err := os.OpenFile(name, os.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	var st unix.Stat_t
	var sfs unix.Statfs_t
	if unix.Fstat(int(f.Fd()), &st) != nil || st.Dev != self.Dev || st.Ino != self.Ino ||
		unix.Fstatfs(int(f.Fd()), &sfs) != nil || sfs.Flags&unix.ST_RDONLY == 0 {
		f.Close()
		return nil, errors.New("cached binary is not a read-only mount of ours")
	}
	return f, nil
}

func memfdExe() (*os.File, error) {
	src, err := os.Open("/proc/self/exe")
	if err != nil {
		return nil, err
	}
	defer src.Close()
	st, err := src.Stat()
	if err != nil {
		return nil, err
	}
	fd, err := unix.MemfdCreate("berth-runtime", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), "memfd:berth-runtime")
	remaining := st.Size()
	for remaining > 0 {
		n, err := unix.Sendfile(fd, int(src.Fd()), nil, int(remaining))
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("copy runtime binary: %w", err)
		}
		if n == 0 {
			break
		}
		remaining -= int64(n)
	}
	const seals = unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals); err != nil {
		f.Close()
		return nil, fmt.Errorf("seal runtime binary copy: %w", err)
	}
	return f, nil
}
