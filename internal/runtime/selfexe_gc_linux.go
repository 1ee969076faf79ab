package runtime

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// The exe cache (exeCacheDir) gains a mount for every binary version that
// ever runs a container, and a host that builds many (a CI runner, a
// developer's machine) collects dozens. Each stays in the host's mount
// table — which every reader of /proc/*/mountinfo parses, systemd and
// berth's own cleanup included — and pins its binary's inode. So when a
// runtime mounts a new version (the rare, slow path; the hot path opens
// an existing mount and never gets here), it first collects, under the
// cache's lock:
//
//   - for free, every entry that can no longer be used: its binary was
//     deleted or rewritten in place (a new inode change time makes a new
//     entry name), or it is no mount at all here (a file left by a
//     runtime that died before mounting, or whose mount lived in a mount
//     namespace that is gone, as under `unshare -m`);
//   - when more than exeCacheIdleMax mounted versions remain, every one
//     that no process runs. Who can use an entry? Only a process whose
//     own executable is that binary: a runtime of that version (mounting
//     it, or between opening it and starting the child) and the child it
//     starts, a container's init until it executes the workload, which
//     for a created container means until `start`. So a scan of
//     /proc/*/exe by device and inode finds every user. It costs about
//     5 µs per process (0.4 ms for the 80-odd processes here), which is
//     why it waits for the cache to grow instead of running on every new
//     version.
//
// Collecting is safe even when the scan cannot see a user (a process in
// another PID namespace, a runtime that opens the entry right after the
// scan): the mount is detached (MNT_DETACH), not destroyed. A process
// that runs through it, or holds a descriptor of it, keeps the detached
// mount alive, still read-only, so a write through /proc/PID/exe still
// fails with EROFS; and a later runtime of that version finds no entry
// and mounts it again.
const exeCacheIdleMax = 8

// gcBoundExes collects dir's entries as described above, with at most
// idleMax mounted versions kept without a user. The caller holds the
// cache's lock: no entry is half made while it runs. It returns the
// names of the entries removed.
func gcBoundExes(dir string, idleMax int) []string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var removed []string
	type mounted struct {
		name string
		id   exeID
	}
	var live []mounted
	for _, e := range ents {
		id, ctime, ok := parseExeEntry(e.Name())
		if !ok {
			continue // the lock, or nothing of ours
		}
		p := filepath.Join(dir, e.Name())
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil {
			continue
		}
		if (exeID{st.Dev, st.Ino}) == id && st.Nlink > 0 && st.Ctim.Nano() == ctime {
			live = append(live, mounted{e.Name(), id})
			continue
		}
		if removeBound(p) {
			removed = append(removed, e.Name())
		}
	}
	if len(live) <= idleMax {
		return removed
	}
	running, err := runningExes()
	if err != nil {
		return removed // without the scan, every entry may be in use
	}
	for _, m := range live {
		if _, used := running[m.id]; used {
			continue
		}
		if removeBound(filepath.Join(dir, m.name)) {
			removed = append(removed, m.name)
		}
	}
	return removed
}

// exeID names a binary by its file: device and inode.
type exeID struct{ dev, ino uint64 }

// parseExeEntry reads an entry name that boundExe made:
// <dev>-<ino>-<ctime ns>, in hex.
func parseExeEntry(name string) (id exeID, ctime int64, ok bool) {
	f := strings.Split(name, "-")
	if len(f) != 3 {
		return id, 0, false
	}
	var n [3]uint64
	for i, s := range f {
		v, err := strconv.ParseUint(s, 16, 64)
		if err != nil {
			return id, 0, false
		}
		n[i] = v
	}
	return exeID{n[0], n[1]}, int64(n[2]), true
}

// removeBound detaches every mount on p (builds before the cache's lock
// could stack two) and removes it. Unlinking a file that is a mount point
// in another mount namespace is allowed and detaches the mounts there.
func removeBound(p string) bool {
	for unix.Unmount(p, unix.MNT_DETACH) == nil {
	}
	return os.Remove(p) == nil
}

// runningExes returns the executables of every process in our PID
// namespace, by device and inode. Processes that exit during the scan
// and kernel threads (no executable) are skipped.
func runningExes() (map[exeID]struct{}, error) {
	d, err := os.Open("/proc")
	if err != nil {
		return nil, err
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return nil, err
	}
	out := make(map[exeID]struct{})
	for _, n := range names {
		if n == "" || n[0] < '0' || n[0] > '9' {
			continue
		}
		var st unix.Stat_t
		if unix.Stat("/proc/"+n+"/exe", &st) == nil {
			out[exeID{st.Dev, st.Ino}] = struct{}{}
		}
	}
	return out, nil
}
