package monitor

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"
)

// cgroupRoot is where the cgroup hierarchies are mounted (a variable for
// tests). On a hybrid host the memory controller is a v1 hierarchy at
// <root>/memory and the unified one (without it) at <root>/unified; on a
// pure v2 host <root> itself is the unified hierarchy.
var cgroupRoot = "/sys/fs/cgroup"

// oomCounter reads the OOM kill count of a container's memory cgroup. The
// path is resolved from /proc/<pid>/cgroup while the init lives: once it
// has exited /proc no longer says where it was, but the cgroup itself stays
// until `runtime delete`, and its counter is read then.
type oomCounter struct {
	file string // memory.oom_control (v1) or memory.events (v2)
}

func newOOMCounter(pid int) *oomCounter {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		return nil
	}
	var v1, v2 string
	for line := range bytes.Lines(data) {
		// hierarchy-ID:controller-list:path
		parts := strings.SplitN(strings.TrimSpace(string(line)), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			v2 = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == "memory" {
				v1 = parts[2]
			}
		}
	}
	candidates := []string{}
	if v1 != "" {
		candidates = append(candidates, cgroupRoot+"/memory"+v1+"/memory.oom_control")
	}
	if v2 != "" {
		candidates = append(candidates, cgroupRoot+v2+"/memory.events", cgroupRoot+"/unified"+v2+"/memory.events")
	}
	for _, f := range candidates {
		if _, err := os.Stat(f); err == nil {
			return &oomCounter{file: f}
		}
	}
	return nil
}

// count returns the cgroup's oom_kill counter, or -1 when unreadable.
func (c *oomCounter) count() int64 {
	if c == nil {
		return -1
	}
	f, err := os.Open(c.file)
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if ok && k == "oom_kill" {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err == nil {
				return n
			}
		}
	}
	return -1
}
