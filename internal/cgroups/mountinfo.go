package cgroups

import (
	"bufio"
	"fmt"
	"io"
	"path"
	"strings"
)

// mount is where one cgroup hierarchy is visible: dir is the mountpoint and
// root is the cgroup path (relative to the hierarchy's root) that is mounted
// there, "/" on a host and e.g. "/docker/<id>" inside a container that got
// its own cgroup bind-mounted.
type mount struct {
	dir  string
	root string
}

// join returns the directory of cgroup p (relative to the hierarchy root)
// under this mount.
func (m mount) join(p string) string {
	if m.root != "/" && m.root != "" {
		if p == m.root {
			p = "/"
		} else if strings.HasPrefix(p, m.root+"/") {
			p = p[len(m.root):]
		}
	}
	return path.Join(m.dir, p)
}

// mounts is the cgroup layout found in a mountinfo file.
type mounts struct {
	// v1 maps each controller ("cpu", "memory", "name=systemd", ...) to its
	// hierarchy. Co-mounted controllers (cpu,cpuacct) share one mount.
	v1 map[string]mount
	// v2 is the unified hierarchy, if mounted (dir == "" if not).
	v2 mount
}

// knownV1 are the v1 options of a cgroup mount that name controllers; every
// other option (rw, relatime, clone_children, xattr, ...) is a mount flag.
var knownV1 = map[string]bool{
	"cpu": true, "cpuacct": true, "cpuset": true, "memory": true,
	"devices": true, "freezer": true, "blkio": true, "pids": true,
	"hugetlb": true, "net_cls": true, "net_prio": true, "perf_event": true,
	"rdma": true, "misc": true,
}

// parseMountinfo extracts the cgroup mounts from /proc/self/mountinfo
// (proc(5)): "id parent maj:min root mountpoint opts [optional...] - fstype
// source superopts". The first mount of a hierarchy wins, as the kernel
// reports mounts in mount order and later ones are usually bind mounts.
func parseMountinfo(r io.Reader) (mounts, error) {
	ms := mounts{v1: map[string]mount{}}
	sc := bufio.NewScanner(r)
	// One read for the whole file where it fits: the kernel formats
	// mountinfo afresh for every read(2), and each costs a walk of the
	// mount table (with dozens of mounts, several 4 KiB reads cost more
	// than the rest of New).
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		sep := strings.Index(line, " - ")
		if sep < 0 {
			continue
		}
		post := strings.Fields(line[sep+3:])
		if len(post) < 1 || (post[0] != "cgroup" && post[0] != "cgroup2") {
			continue
		}
		pre := strings.Fields(line[:sep])
		if len(pre) < 5 {
			return ms, fmt.Errorf("parse mountinfo line %q: too few fields", line)
		}
		m := mount{dir: unescapeOctal(pre[4]), root: unescapeOctal(pre[3])}
		if post[0] == "cgroup2" {
			if ms.v2.dir == "" {
				ms.v2 = m
			}
			continue
		}
		if len(post) < 3 {
			continue
		}
		for _, opt := range strings.Split(post[2], ",") {
			if knownV1[opt] || strings.HasPrefix(opt, "name=") {
				if _, ok := ms.v1[opt]; !ok {
					ms.v1[opt] = m
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return ms, fmt.Errorf("read mountinfo: %w", err)
	}
	return ms, nil
}

// unescapeOctal undoes mountinfo's \040-style escaping of spaces, tabs,
// newlines and backslashes in paths.
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1:i+4]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(s string) bool {
	if len(s) != 3 {
		return false
	}
	for i := 0; i < 3; i++ {
		if s[i] < '0' || s[i] > '7' {
			return false
		}
	}
	return true
}
