package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// v2Manager drives one cgroup in the unified hierarchy mounted at root.
type v2Manager struct {
	path string // relative to the hierarchy root, e.g. "/berth/abc"
	root string // mountpoint, e.g. /sys/fs/cgroup
	dir  string // root + path (adjusted for the mount's root)
}

var _ Manager = (*v2Manager)(nil)

func newV2(root, p string) *v2Manager {
	return &v2Manager{path: p, root: root, dir: path.Join(root, p)}
}

func (m *v2Manager) Path() string { return m.path }

// Apply creates the cgroup, delegates every available controller down to
// it, and moves pid in. On an existing cgroup (exec into a running
// container) it only writes cgroup.procs.
func (m *v2Manager) ThreadFiles() []string { return nil }

func (m *v2Manager) EnterThread() (func() error, int, error) {
	// v2 has clone3(CLONE_INTO_CGROUP): the thread itself stays put.
	fd, err := unix.Open(m.dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, -1, fmt.Errorf("cgroups: open %s: %w", m.dir, err)
	}
	return func() error { return nil }, fd, nil
}

func (m *v2Manager) Apply(pid int) error {
	if err := m.Prepare(); err != nil {
		return err
	}
	if err := writeFile(m.dir, "cgroup.procs", strconv.Itoa(pid)); err != nil {
		return fmt.Errorf("cgroups: join: %w", err)
	}
	return nil
}

func (m *v2Manager) Prepare() error {
	created, err := mkdirCgroup(m.dir)
	if err != nil {
		return fmt.Errorf("cgroups: %w", err)
	}
	if created {
		avail, err := readTrim(m.root, "cgroup.controllers")
		if err != nil {
			return fmt.Errorf("cgroups: %w", err)
		}
		if err := m.enableControllers(strings.Fields(avail)); err != nil {
			return fmt.Errorf("cgroups: %w", err)
		}
	}
	return nil
}

// enableControllers writes "+c" for each controller into the
// cgroup.subtree_control of the root and of every ancestor of the cgroup,
// top-down, so the cgroup's directory gets the controllers' files. The
// cgroup itself is a leaf holding processes and must not enable any (v2's
// "no internal processes" rule). A controller an ancestor cannot enable
// (its parent lacks it, or the ancestor holds processes) is dropped for
// the levels below; whether that matters is for Set to find out.
func (m *v2Manager) enableControllers(ctrls []string) error {
	if len(ctrls) == 0 {
		return nil
	}
	rel := strings.TrimPrefix(m.dir, m.root)
	ancestors := []string{m.root}
	d := m.root
	for _, part := range strings.Split(strings.Trim(path.Dir(rel), "/"), "/") {
		if part == "" {
			continue
		}
		d += "/" + part
		ancestors = append(ancestors, d)
	}
	for _, a := range ancestors {
		// All at once first: one write per level in the common case. The
		// kernel applies a multi-controller write all or nothing.
		if err := writeFile(a, "cgroup.subtree_control", "+"+strings.Join(ctrls, " +")); err == nil {
			continue
		}
		var ok []string
		for _, c := range ctrls {
			if err := writeFile(a, "cgroup.subtree_control", "+"+c); err == nil {
				ok = append(ok, c)
			}
		}
		ctrls = ok
		if len(ctrls) == 0 {
			return nil
		}
	}
	return nil
}

func (m *v2Manager) Freeze() error {
	if err := m.setFrozen(true); err != nil {
		_ = writeFile(m.dir, "cgroup.freeze", "0")
		return err
	}
	return nil
}

func (m *v2Manager) Thaw() error { return m.setFrozen(false) }

func (m *v2Manager) setFrozen(frozen bool) error {
	v := "0"
	if frozen {
		v = "1"
	}
	if err := writeFile(m.dir, "cgroup.freeze", v); err != nil {
		return fmt.Errorf("cgroups: %w", err)
	}
	// cgroup.freeze is the request; cgroup.events "frozen" flips once
	// every task has actually stopped (or, when thawing, may stay 1 if an
	// ancestor is frozen, so only the freeze is waited for).
	if !frozen {
		return nil
	}
	err := waitFor(10*time.Second, func() (bool, error) { return m.Frozen() })
	if err != nil {
		return fmt.Errorf("cgroups: freeze %s: %w", m.dir, err)
	}
	return nil
}

func (m *v2Manager) Frozen() (bool, error) {
	n, err := readKey(m.dir, "cgroup.events", "frozen")
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return false, nil
		}
		return false, fmt.Errorf("cgroups: %w", err)
	}
	return n == 1, nil
}

func (m *v2Manager) Pids() ([]int, error) {
	pids, err := readPids(m.dir, nil)
	if err != nil {
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	return pids, nil
}

func (m *v2Manager) OOMKillCount() (uint64, error) {
	n, err := readKey(m.dir, "memory.events", "oom_kill")
	if err != nil {
		return 0, fmt.Errorf("cgroups: %w", err)
	}
	return n, nil
}

func (m *v2Manager) Destroy() error {
	if err := removeCgroup(m.dir); err != nil {
		return fmt.Errorf("cgroups: destroy %s: %w", m.path, err)
	}
	return nil
}

// hasFile reports whether the cgroup has a control file, which on v2 says
// whether a controller is enabled for it.
func (m *v2Manager) hasFile(name string) bool {
	return unix.Access(m.dir+"/"+name, unix.F_OK) == nil
}
