package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// v1Order is the order in which Apply creates the v1 cgroups and joins
// them. cpuset comes first because a new cpuset cgroup must have cpus and
// mems before it accepts a task.
var v1Order = []string{
	"cpuset", "cpu", "cpuacct", "memory", "devices", "freezer", "blkio",
	"pids", "hugetlb", "net_cls", "net_prio", "perf_event", "rdma", "misc",
}

// v1Manager drives one cgroup in every mounted v1 hierarchy. Named
// hierarchies (name=systemd) are left alone: they carry no limits, and
// joining them costs a mkdir and a write per container for nothing.
type v1Manager struct {
	path string
	// dirs maps each mounted controller to the cgroup's directory in its
	// hierarchy; co-mounted controllers share a directory.
	dirs map[string]string
	// mnts maps each mounted controller to its mountpoint (for cpuset,
	// whose initialisation walks up to the hierarchy root).
	mnts map[string]string
	// mts keeps each controller's mount, to find other cgroups' directories.
	mts map[string]mount
	// unified is the cgroup's directory in the v2 hierarchy of a hybrid
	// host, "" on a pure legacy host.
	unified string
	// v2 is the v2 manager for unified ("" -> nil).
	v2 *v2Manager
}

var _ Manager = (*v1Manager)(nil)

func newV1(ms mounts, p string) *v1Manager {
	m := &v1Manager{path: p, dirs: map[string]string{}, mnts: map[string]string{}, mts: map[string]mount{}}
	for _, c := range v1Order {
		if mt, ok := ms.v1[c]; ok {
			m.dirs[c] = mt.join(p)
			m.mnts[c] = mt.dir
			m.mts[c] = mt
		}
	}
	if ms.v2.dir != "" {
		m.v2 = &v2Manager{path: p, root: ms.v2.dir, dir: ms.v2.join(p)}
		m.unified = m.v2.dir
	}
	return m
}

func (m *v1Manager) Path() string { return m.path }

// uniqueDirs lists the cgroup's directories in v1Order without repeating
// co-mounted hierarchies.
func (m *v1Manager) uniqueDirs() []string {
	out := make([]string, 0, len(m.dirs))
	for _, c := range v1Order {
		d, ok := m.dirs[c]
		if !ok {
			continue
		}
		dup := false
		for _, o := range out {
			if o == d {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, d)
		}
	}
	return out
}

func (m *v1Manager) Prepare() error {
	for _, d := range m.uniqueDirs() {
		created, err := mkdirCgroup(d)
		if err != nil {
			return fmt.Errorf("cgroups: %w", err)
		}
		if created && d == m.dirs["cpuset"] {
			if err := initCpuset(d, m.mnts["cpuset"]); err != nil {
				return fmt.Errorf("cgroups: %w", err)
			}
		}
	}
	if m.v2 != nil {
		_, _ = mkdirCgroup(m.unified)
	}
	return nil
}

func (m *v1Manager) ThreadFiles() []string {
	var out []string
	for _, d := range m.uniqueDirs() {
		out = append(out, path.Join(d, "tasks"))
	}
	return out
}

func (m *v1Manager) EnterThread() (func() error, int, error) {
	data, err := os.ReadFile("/proc/thread-self/cgroup")
	if err != nil {
		return nil, -1, err
	}
	orig, err := parseProcCgroup(string(data))
	if err != nil {
		return nil, -1, err
	}
	var back []string // tasks files to write "0" to on leaving
	leave := func() error {
		var first error
		for _, f := range back {
			if err := writeFile(path.Dir(f), path.Base(f), "0"); err != nil && first == nil {
				first = fmt.Errorf("cgroups: move thread back: %w", err)
			}
		}
		return first
	}
	seen := map[string]bool{}
	for _, c := range v1Order {
		d, ok := m.dirs[c]
		if !ok || seen[d] {
			continue
		}
		seen[d] = true
		if err := writeFile(d, "tasks", "0"); err != nil {
			_ = leave()
			return nil, -1, fmt.Errorf("cgroups: move thread: %w", err)
		}
		if p, ok := orig[c]; ok {
			back = append(back, path.Join(m.mts[c].join(p), "tasks"))
		}
	}
	if m.v2 == nil {
		return leave, -1, nil
	}
	// Best effort, as in Apply: the hybrid host's v2 half holds hugetlb.
	fd, err := unix.Open(m.unified, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return leave, -1, nil
	}
	return leave, fd, nil
}

func (m *v1Manager) Apply(pid int) error {
	pidStr := strconv.Itoa(pid)
	if err := m.Prepare(); err != nil {
		return err
	}
	for _, d := range m.uniqueDirs() {
		if err := writeFile(d, "cgroup.procs", pidStr); err != nil {
			return fmt.Errorf("cgroups: join: %w", err)
		}
	}
	// On a hybrid host the v2 hierarchy only matters for the few
	// controllers bound to it (hugetlb here) and for the unified map:
	// joining it is best effort and must never fail a v1 setup. Set
	// reports an error later if a limit needs it and this failed.
	if m.v2 != nil {
		_ = writeFile(m.unified, "cgroup.procs", pidStr)
	}
	return nil
}

// mkdirCgroup creates dir and its parents and reports whether dir itself
// was new (an existing cgroup is one an earlier Apply set up: `exec`).
func mkdirCgroup(dir string) (bool, error) {
	err := unix.Mkdir(dir, 0o755)
	switch err {
	case nil:
		return true, nil
	case unix.EEXIST:
		return false, nil
	case unix.ENOENT:
		if err := os.MkdirAll(path.Dir(dir), 0o755); err != nil {
			return false, err
		}
		if err := unix.Mkdir(dir, 0o755); err != nil && err != unix.EEXIST {
			return false, &os.PathError{Op: "mkdir", Path: dir, Err: err}
		}
		return true, nil
	}
	return false, &os.PathError{Op: "mkdir", Path: dir, Err: err}
}

// initCpuset gives a new v1 cpuset cgroup (and any new parents) its
// parent's cpus and mems. v1 creates cpuset cgroups with both empty (unless
// the parent has cgroup.clone_children set) and refuses tasks until they
// are set: writing cgroup.procs fails with ENOSPC.
func initCpuset(dir, mnt string) error {
	var chain []string // dirs with empty values, leaf first
	var cpus, mems string
	for d := dir; ; d = path.Dir(d) {
		c, err := readTrim(d, "cpuset.cpus")
		if err != nil {
			return err
		}
		mm, err := readTrim(d, "cpuset.mems")
		if err != nil {
			return err
		}
		if c != "" && mm != "" {
			cpus, mems = c, mm
			break
		}
		if d == mnt || d == "/" || d == "." {
			return fmt.Errorf("cpuset hierarchy at %s has no cpus or mems", d)
		}
		chain = append(chain, d)
	}
	for i := len(chain) - 1; i >= 0; i-- {
		if err := writeFile(chain[i], "cpuset.cpus", cpus); err != nil {
			return err
		}
		if err := writeFile(chain[i], "cpuset.mems", mems); err != nil {
			return err
		}
	}
	return nil
}

// need returns the directory of controller c, or an error naming the
// setting that needs it when the host does not mount it.
func (m *v1Manager) need(c, what string) (string, error) {
	d, ok := m.dirs[c]
	if !ok {
		return "", fmt.Errorf("cgroups: %s requires the %s controller, which is not mounted", what, c)
	}
	return d, nil
}

func (m *v1Manager) Freeze() error {
	d, ok := m.dirs["freezer"]
	if !ok {
		if m.v2 != nil {
			return m.v2.Freeze()
		}
		return errors.New("cgroups: freeze requires the freezer controller, which is not mounted")
	}
	// A freeze can stay in FREEZING when a task is in an uninterruptible
	// sleep; writing FROZEN again retries it (runc does the same).
	err := waitFor(10*time.Second, func() (bool, error) {
		if err := writeFile(d, "freezer.state", "FROZEN"); err != nil {
			return false, err
		}
		s, err := readTrim(d, "freezer.state")
		return s == "FROZEN", err
	})
	if err != nil {
		_ = writeFile(d, "freezer.state", "THAWED")
		return fmt.Errorf("cgroups: freeze %s: %w", d, err)
	}
	return nil
}

func (m *v1Manager) Thaw() error {
	d, ok := m.dirs["freezer"]
	if !ok {
		if m.v2 != nil {
			return m.v2.Thaw()
		}
		return errors.New("cgroups: thaw requires the freezer controller, which is not mounted")
	}
	if err := writeFile(d, "freezer.state", "THAWED"); err != nil {
		return fmt.Errorf("cgroups: thaw: %w", err)
	}
	return nil
}

func (m *v1Manager) Frozen() (bool, error) {
	d, ok := m.dirs["freezer"]
	if !ok {
		if m.v2 != nil {
			return m.v2.Frozen()
		}
		return false, nil
	}
	s, err := readTrim(d, "freezer.state")
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return false, nil
		}
		return false, fmt.Errorf("cgroups: %w", err)
	}
	return s == "FROZEN", nil
}

func (m *v1Manager) Pids() ([]int, error) {
	d := ""
	for _, c := range []string{"memory", "pids"} {
		if x, ok := m.dirs[c]; ok {
			d = x
			break
		}
	}
	if d == "" {
		if ds := m.uniqueDirs(); len(ds) > 0 {
			d = ds[0]
		} else if m.v2 != nil {
			d = m.unified
		} else {
			return nil, errors.New("cgroups: no cgroup hierarchy mounted")
		}
	}
	pids, err := readPids(d, nil)
	if err != nil {
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	return pids, nil
}

func (m *v1Manager) OOMKillCount() (uint64, error) {
	d, err := m.need("memory", "OOM kill count")
	if err != nil {
		return 0, err
	}
	n, err := readKey(d, "memory.oom_control", "oom_kill")
	if err != nil {
		return 0, fmt.Errorf("cgroups: %w", err)
	}
	return n, nil
}

func (m *v1Manager) Destroy() error {
	var errs []error
	for _, d := range m.uniqueDirs() {
		if err := removeCgroup(d); err != nil {
			errs = append(errs, err)
		}
	}
	if m.v2 != nil {
		if err := removeCgroup(m.unified); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cgroups: destroy %s: %w", m.path, err)
	}
	return nil
}

// devNum formats a device major or minor for a device rule; nil or
// negative (OCI's "unset") is the "*" wildcard.
func devNum(n *int64) string {
	if n == nil || *n < 0 {
		return "*"
	}
	return strconv.FormatInt(*n, 10)
}
