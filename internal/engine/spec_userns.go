package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// User namespaces (--userns). A container gets one when its UsernsMode is:
//
//   - "UID:GID:SIZE": container IDs 0..SIZE-1 are host UID.. and GID..;
//   - "auto" or "auto:size=N": a free range of N (default 65536) host IDs
//     that no other container of this root holds, recorded in
//     <root>/userns.json so it stays the container's across restarts;
//   - "" or "host": none (the default, as in Docker without userns-remap).
//
// The container's files stay owned by the IDs the image has (0 for root):
// the engine gives the runtime an idmapped view of the rootfs and of the
// volumes (mount_setattr MOUNT_ATTR_IDMAP), so what the image stores as
// uid 0 appears as the container's root, and what the container writes is
// stored as the container sees it. Nothing is chowned, so any range works
// on any image instantly, and the same layers serve every container.
const (
	usernsAutoBase = 1 << 20 // first host ID handed out by "auto"
	usernsAutoSize = 65536
	usernsAutoMax  = 1 << 31 // ranges stay below this
)

// usernsRange is a container's ID mapping: container 0 is host uid/gid.
type usernsRange struct {
	uid, gid, size uint32
}

// parseUserns reads a UsernsMode; auto reports "auto" with its size.
func parseUserns(mode string) (r usernsRange, auto bool, err error) {
	bad := fmt.Errorf("invalid --userns %q: use host, auto[:size=N] or UID:GID:SIZE: %w", mode, errdefs.ErrInvalidArgument)
	switch {
	case mode == "" || mode == "host":
		return r, false, nil
	case mode == "auto":
		return usernsRange{size: usernsAutoSize}, true, nil
	case strings.HasPrefix(mode, "auto:size="):
		n, err := strconv.ParseUint(strings.TrimPrefix(mode, "auto:size="), 10, 32)
		if err != nil || n == 0 || n > 1<<24 {
			return r, false, bad
		}
		return usernsRange{size: uint32(n)}, true, nil
	}
	parts := strings.Split(mode, ":")
	if len(parts) != 3 {
		return r, false, bad
	}
	var v [3]uint64
	for i, p := range parts {
		if v[i], err = strconv.ParseUint(p, 10, 32); err != nil {
			return r, false, bad
		}
	}
	if v[2] == 0 || v[0]+v[2] > 1<<32 || v[1]+v[2] > 1<<32 {
		return r, false, bad
	}
	return usernsRange{uid: uint32(v[0]), gid: uint32(v[1]), size: uint32(v[2])}, false, nil
}

func (r usernsRange) maps() (uid, gid []specs.LinuxIDMapping) {
	return []specs.LinuxIDMapping{{ContainerID: 0, HostID: r.uid, Size: r.size}},
		[]specs.LinuxIDMapping{{ContainerID: 0, HostID: r.gid, Size: r.size}}
}

// usernsAllocation is <root>/userns.json: container ID → first host ID.
type usernsAllocation map[string]uint32

// allocateUserns returns c's "auto" range: the one recorded for it, or the
// lowest free one. Records of containers that no longer exist are dropped
// on the way, so removal needs no hook and a kill -9 leaks nothing for long.
func (e *Engine) allocateUserns(c *Container, size uint32) (usernsRange, error) {
	path := filepath.Join(e.opts.Root, "userns.json")
	f, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return usernsRange{}, fmt.Errorf("userns: %w", err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		return usernsRange{}, &os.PathError{Op: "flock", Path: path + ".lock", Err: err}
	}
	alloc := usernsAllocation{}
	if b, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(b, &alloc); err != nil {
			return usernsRange{}, fmt.Errorf("userns: corrupt %s: %w", path, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return usernsRange{}, fmt.Errorf("userns: %w", err)
	}
	// Ranges are allocated in blocks of usernsAutoSize; a larger request
	// takes several consecutive blocks.
	blocks := (size + usernsAutoSize - 1) / usernsAutoSize
	if start, ok := alloc[c.ID]; ok {
		return usernsRange{uid: start, gid: start, size: size}, nil
	}
	all, err := e.listContainers()
	if err != nil {
		return usernsRange{}, err
	}
	live := map[string]bool{c.ID: true}
	for _, o := range all {
		live[o.ID] = true
	}
	used := map[uint32]bool{}
	for id, start := range alloc {
		if owner, _, _ := strings.Cut(id, "+"); !live[owner] {
			delete(alloc, id)
			continue
		}
		used[start] = true
	}
	// A range larger than one block records its extra blocks as
	// "<id>+<n>", so every block in use has an entry of its own.
	free := func(start uint32) bool {
		for b := uint32(0); b < blocks; b++ {
			if used[start+b*usernsAutoSize] {
				return false
			}
		}
		return true
	}
	var start uint32
	for s := uint64(usernsAutoBase); s+uint64(blocks)*usernsAutoSize <= usernsAutoMax; s += usernsAutoSize {
		if free(uint32(s)) {
			start = uint32(s)
			break
		}
	}
	if start == 0 {
		return usernsRange{}, fmt.Errorf("userns: no free range of %d IDs left: %w", size, errdefs.ErrUnavailable)
	}
	alloc[c.ID] = start
	for b := uint32(1); b < blocks; b++ {
		alloc[c.ID+"+"+strconv.Itoa(int(b))] = start + b*usernsAutoSize
	}
	b, err := json.MarshalIndent(alloc, "", "  ")
	if err != nil {
		return usernsRange{}, err
	}
	if err := writeFileAtomic(path, b, 0o600); err != nil {
		return usernsRange{}, fmt.Errorf("userns: %w", err)
	}
	return usernsRange{uid: start, gid: start, size: size}, nil
}
