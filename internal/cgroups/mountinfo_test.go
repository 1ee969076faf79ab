package cgroups

import (
	"strings"
	"testing"
)

// hybridMountinfo is the cgroup part of this development host's
// mountinfo: cpu and cpuacct mounted separately, a named systemd
// hierarchy, and cgroup2 at /sys/fs/cgroup/unified.
const hybridMountinfo = `22 1 259:1 / / rw,relatime - ext4 /dev/vda rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`

// unifiedMountinfo is a pure v2 host (systemd default since 2021).
const unifiedMountinfo = `24 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
35 24 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
`

// containerMountinfo is a legacy layout as seen inside a container:
// co-mounted cpu,cpuacct and net_cls,net_prio, each hierarchy's own cgroup
// bind-mounted as the mount root, and a path with an escaped space.
const containerMountinfo = `600 590 0:50 /docker/abc /sys/fs/cgroup/cpu,cpuacct ro,nosuid - cgroup cgroup rw,xattr,cpu,cpuacct
601 590 0:51 /docker/abc /sys/fs/cgroup/net_cls,net_prio ro,nosuid - cgroup cgroup rw,net_cls,net_prio
602 590 0:52 / /sys/fs/cgroup/my\040memory rw - cgroup cgroup rw,memory
603 590 0:53 / /mnt/other-memory rw - cgroup cgroup rw,memory
`

func TestParseMountinfo(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		wantV1 map[string]mount
		wantV2 mount
	}{
		{
			name: "hybrid host",
			in:   hybridMountinfo,
			wantV1: map[string]mount{
				"cpu":          {"/sys/fs/cgroup/cpu", "/"},
				"cpuacct":      {"/sys/fs/cgroup/cpuacct", "/"},
				"cpuset":       {"/sys/fs/cgroup/cpuset", "/"},
				"memory":       {"/sys/fs/cgroup/memory", "/"},
				"devices":      {"/sys/fs/cgroup/devices", "/"},
				"freezer":      {"/sys/fs/cgroup/freezer", "/"},
				"blkio":        {"/sys/fs/cgroup/blkio", "/"},
				"pids":         {"/sys/fs/cgroup/pids", "/"},
				"name=systemd": {"/sys/fs/cgroup/systemd", "/"},
			},
			wantV2: mount{"/sys/fs/cgroup/unified", "/"},
		},
		{
			name:   "unified host",
			in:     unifiedMountinfo,
			wantV1: map[string]mount{},
			wantV2: mount{"/sys/fs/cgroup", "/"},
		},
		{
			name: "co-mounted, container roots, first mount wins",
			in:   containerMountinfo,
			wantV1: map[string]mount{
				"cpu":      {"/sys/fs/cgroup/cpu,cpuacct", "/docker/abc"},
				"cpuacct":  {"/sys/fs/cgroup/cpu,cpuacct", "/docker/abc"},
				"net_cls":  {"/sys/fs/cgroup/net_cls,net_prio", "/docker/abc"},
				"net_prio": {"/sys/fs/cgroup/net_cls,net_prio", "/docker/abc"},
				"memory":   {"/sys/fs/cgroup/my memory", "/"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseMountinfo(strings.NewReader(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if len(got.v1) != len(tt.wantV1) {
				t.Errorf("v1 = %v, want %v", got.v1, tt.wantV1)
			}
			for c, want := range tt.wantV1 {
				if got.v1[c] != want {
					t.Errorf("v1[%q] = %v, want %v", c, got.v1[c], want)
				}
			}
			if got.v2 != tt.wantV2 {
				t.Errorf("v2 = %v, want %v", got.v2, tt.wantV2)
			}
		})
	}
}

func TestMountJoin(t *testing.T) {
	tests := []struct {
		name string
		m    mount
		p    string
		want string
	}{
		{"host root", mount{"/sys/fs/cgroup/memory", "/"}, "/berth/x", "/sys/fs/cgroup/memory/berth/x"},
		{"container root, path below it", mount{"/sys/fs/cgroup/cpu", "/docker/abc"}, "/docker/abc/berth/x", "/sys/fs/cgroup/cpu/berth/x"},
		{"container root, the root itself", mount{"/sys/fs/cgroup/cpu", "/docker/abc"}, "/docker/abc", "/sys/fs/cgroup/cpu"},
		{"container root, path outside it", mount{"/sys/fs/cgroup/cpu", "/docker/abc"}, "/berth/x", "/sys/fs/cgroup/cpu/berth/x"},
		{"prefix is not a parent", mount{"/m", "/docker/abc"}, "/docker/abcd", "/m/docker/abcd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.m.join(tt.p); got != tt.want {
				t.Errorf("join(%q) = %q, want %q", tt.p, got, tt.want)
			}
		})
	}
}
