package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/snapshot"
	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/moby/api/types/mount"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// prepareUserns gives a --userns container its ID mapping and idmapped
// views of its rootfs and volumes (see spec_userns.go). The rootfs overlay
// that the caller mounted at rootfs is replaced by one whose layers are
// idmapped mounts, and each volume and bind mount that supports it is
// mounted, idmapped, under rootfs itself (the runtime bind-mounts the rootfs
// recursively, so they come along). Everything lives under rootfs, so the
// caller's unmount of rootfs cleans it all up, even after a kill -9.
func (e *Engine) prepareUserns(ctx context.Context, c *Container, rootfs string, env *specEnv) (cleanup func(), err error) {
	cleanup = func() {}
	r, auto, err := parseUserns(string(c.HostConfig.UsernsMode))
	if err != nil || (r.size == 0 && !auto) {
		return cleanup, err
	}
	if c.HostConfig.Privileged {
		return cleanup, fmt.Errorf("privileged mode is incompatible with user namespaces. You must run the container in the host namespace when running privileged mode: %w", errdefs.ErrInvalidArgument)
	}
	if auto {
		if r, err = e.allocateUserns(c, r.size); err != nil {
			return cleanup, err
		}
	}
	env.uidMap, env.gidMap = r.maps()
	if err := traversable(rootfs); err != nil {
		return cleanup, err
	}
	ns, stop, err := usernsFD(r)
	if err != nil {
		return cleanup, err
	}
	defer stop()

	mounts, err := e.snaps.Mounts(ctx, c.Snapshot)
	if err != nil {
		return cleanup, err
	}
	if err := snapshot.UnmountAll(rootfs); err != nil {
		return cleanup, fmt.Errorf("userns: remount rootfs: %w", err)
	}
	if err := mountIdmappedRootfs(mounts, rootfs, ns, r); err != nil {
		return cleanup, fmt.Errorf("userns: idmapped rootfs: %w", err)
	}
	mps, err := containerMounts(c)
	if err != nil {
		return cleanup, err
	}
	env.premounted = map[string]bool{}
	for _, m := range mps {
		if m.Type == mount.TypeTmpfs {
			continue // a tmpfs is the container's own: the runtime makes it
		}
		src := m.Source
		if m.Type == mount.TypeVolume {
			src = env.volumePath(m.Source)
		}
		fd, err := idmapTree(src, ns, !m.RW, false)
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EPERM) {
			// The filesystem cannot be idmapped: the runtime binds it as
			// is, and its files show as the overflow ID inside.
			continue
		}
		if err != nil {
			return cleanup, fmt.Errorf("userns: mount %s: %w", m.Destination, err)
		}
		err = attachUnder(fd, rootfs, m.Destination, src)
		unix.Close(fd)
		if err != nil {
			return cleanup, fmt.Errorf("userns: mount %s: %w", m.Destination, err)
		}
		env.premounted[m.Destination] = true
	}
	return cleanup, nil
}

// usernsFD returns a descriptor of a user namespace with r's mapping. The
// kernel only makes user namespaces for processes, and a multi-threaded Go
// program cannot unshare one, so a child is cloned into it: it execs a
// static binary under PTRACE_TRACEME, which stops it before its first
// instruction, so nothing runs in the namespace; stop kills it. The
// namespace lives on through the descriptor and the mounts idmapped with it.
func usernsFD(r usernsRange) (fd int, stop func(), err error) {
	bin := findInit()
	if bin == "" {
		if bin, err = os.Executable(); err != nil {
			return -1, nil, err
		}
	}
	cmd := exec.Command(bin)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  unix.CLONE_NEWUSER,
		Ptrace:      true,
		Pdeathsig:   unix.SIGKILL,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: int(r.uid), Size: int(r.size)}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: int(r.gid), Size: int(r.size)}},
	}
	if err := cmd.Start(); err != nil {
		return -1, nil, fmt.Errorf("userns: create namespace: %w", err)
	}
	kill := func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	fd, err = unix.Open("/proc/"+strconv.Itoa(cmd.Process.Pid)+"/ns/user", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		kill()
		return -1, nil, fmt.Errorf("userns: open namespace: %w", err)
	}
	return fd, func() { unix.Close(fd); kill() }, nil
}

// idmapTree clones the mount at path (a detached copy) and idmaps it with
// the namespace ns, read-only if ro.
func idmapTree(path string, ns int, ro, recursive bool) (int, error) {
	flags := unix.OPEN_TREE_CLONE | unix.OPEN_TREE_CLOEXEC
	at := unix.AT_EMPTY_PATH
	if recursive {
		flags |= unix.AT_RECURSIVE
		at |= unix.AT_RECURSIVE
	}
	fd, err := unix.OpenTree(unix.AT_FDCWD, path, uint(flags))
	if err != nil {
		return -1, &os.PathError{Op: "open_tree", Path: path, Err: err}
	}
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(ns)}
	if ro {
		attr.Attr_set |= unix.MOUNT_ATTR_RDONLY
	}
	if err := unix.MountSetattr(fd, "", uint(at), &attr); err != nil {
		unix.Close(fd)
		return -1, &os.PathError{Op: "mount_setattr idmap", Path: path, Err: err}
	}
	return fd, nil
}

// attachUnder moves the detached mount fd onto dest inside rootfs,
// creating the mount point (a directory, or a file for a file source)
// resolved inside rootfs.
func attachUnder(fd int, rootfs, dest, src string) error {
	target, err := securejoin.SecureJoin(rootfs, dest)
	if err != nil {
		return err
	}
	st, err := os.Stat(src)
	if err != nil {
		return err
	}
	if st.IsDir() {
		err = os.MkdirAll(target, 0o755)
	} else {
		if err = os.MkdirAll(filepath.Dir(target), 0o755); err == nil {
			var f *os.File
			if f, err = os.OpenFile(target, os.O_CREATE|os.O_RDONLY|unix.O_NOFOLLOW, 0o644); err == nil {
				f.Close()
			}
		}
	}
	if err != nil {
		return err
	}
	if err := unix.MoveMount(fd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return &os.PathError{Op: "move_mount", Path: target, Err: err}
	}
	return nil
}

// mountIdmappedRootfs mounts the snapshot's mounts at rootfs with every
// lower layer idmapped. Overlayfs cannot itself be idmapped, but it accepts
// idmapped lower layers (Linux 5.19): each is cloned and idmapped, and the
// overlay is built over them with the new mount API ("lowerdir+", Linux
// 6.8), which takes each layer as a path through /proc/self/fd to its
// detached mount.
func mountIdmappedRootfs(mounts []specs.Mount, rootfs string, ns int, r usernsRange) error {
	if len(mounts) != 1 {
		return fmt.Errorf("%d snapshot mounts: %w", len(mounts), errdefs.ErrNotSupported)
	}
	m := mounts[0]
	if m.Type == "bind" || m.Type == "" {
		ro := false
		for _, o := range m.Options {
			ro = ro || o == "ro"
		}
		fd, err := idmapTree(m.Source, ns, ro, false)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		return unix.MoveMount(fd, "", unix.AT_FDCWD, rootfs, unix.MOVE_MOUNT_F_EMPTY_PATH)
	}
	if m.Type != "overlay" {
		return fmt.Errorf("snapshot mount type %q: %w", m.Type, errdefs.ErrNotSupported)
	}
	var lowers []string
	var upper, work string
	var rest []string
	for _, o := range m.Options {
		k, v, _ := strings.Cut(o, "=")
		switch k {
		case "lowerdir":
			lowers = splitOverlayLowers(v)
		case "upperdir":
			upper = v
		case "workdir":
			work = v
		default:
			rest = append(rest, o)
		}
	}
	var fds []int
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	clone := func(p string) (string, error) {
		fd, err := idmapTree(p, ns, false, false)
		if err != nil {
			return "", err
		}
		fds = append(fds, fd)
		return "/proc/self/fd/" + strconv.Itoa(fd), nil
	}
	fs, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return &os.PathError{Op: "fsopen", Path: "overlay", Err: err}
	}
	defer unix.Close(fs)
	set := func(k, v string) error {
		var err error
		if v == "" {
			err = unix.FsconfigSetFlag(fs, k)
		} else {
			err = unix.FsconfigSetString(fs, k, v)
		}
		if err != nil {
			return fmt.Errorf("overlay option %s=%s: %w", k, v, err)
		}
		return nil
	}
	for _, l := range lowers {
		p, err := clone(l)
		if err != nil {
			return err
		}
		if err := set("lowerdir+", p); err != nil {
			return err
		}
	}
	if upper != "" {
		// The upper layer is not idmapped: overlayfs creates its work
		// files with the mounter's credentials (host root), which an
		// idmapped upper cannot represent (EOVERFLOW, and the overlay falls
		// back to read-only). The container's writes are therefore stored
		// with its host IDs; its root directory is given to the
		// container's root so that root can write in "/".
		if err := shiftOwner(upper, r); err != nil {
			return err
		}
		if err := set("upperdir", upper); err != nil {
			return err
		}
		if err := set("workdir", work); err != nil {
			return err
		}
	}
	for _, o := range rest {
		k, v, _ := strings.Cut(o, "=")
		if err := set(k, v); err != nil {
			return err
		}
	}
	if err := unix.FsconfigCreate(fs); err != nil {
		return fmt.Errorf("create overlay: %w", err)
	}
	mfd, err := unix.Fsmount(fs, unix.FSMOUNT_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("fsmount overlay: %w", err)
	}
	defer unix.Close(mfd)
	if err := unix.MoveMount(mfd, "", unix.AT_FDCWD, rootfs, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return &os.PathError{Op: "move_mount", Path: rootfs, Err: err}
	}
	return nil
}

// splitOverlayLowers splits a lowerdir list, honouring the snapshotter's
// escapes ("\:" "\," "\\").
func splitOverlayLowers(s string) []string {
	var out []string
	var cur strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
		case s[i] == ':':
			out = append(out, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(s[i])
		}
	}
	return append(out, cur.String())
}

// shiftOwner maps the owner of dir (an upper layer's root) into r, if it is
// not there yet: on-disk ID k becomes host ID r.uid+k.
func shiftOwner(dir string, r usernsRange) error {
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return &os.PathError{Op: "lstat", Path: dir, Err: err}
	}
	uid, gid := st.Uid, st.Gid
	if uid < r.size {
		uid += r.uid
	}
	if gid < r.size {
		gid += r.gid
	}
	if uid == st.Uid && gid == st.Gid {
		return nil
	}
	if err := unix.Lchown(dir, int(uid), int(gid)); err != nil {
		return &os.PathError{Op: "lchown", Path: dir, Err: err}
	}
	// chown clears setgid; the mode bits are otherwise kept.
	return unix.Chmod(dir, st.Mode&0o7777)
}

// traversable lets the container's mapped root walk to rootfs: the runtime
// binds it from inside the user namespace, where the state directories
// (0700, owned by host root) would refuse it. Search permission (o+x) is
// all it gets: it still cannot list them. Directories are changed from
// rootfs's parent up to the first one that already allows it.
func traversable(rootfs string) error {
	for dir := filepath.Dir(rootfs); dir != "/" && dir != "."; dir = filepath.Dir(dir) {
		st, err := os.Stat(dir)
		if err != nil {
			return err
		}
		if st.Mode().Perm()&0o001 != 0 {
			return nil
		}
		if err := os.Chmod(dir, st.Mode().Perm()|0o001); err != nil {
			return fmt.Errorf("userns: make %s traversable: %w", dir, err)
		}
	}
	return nil
}
