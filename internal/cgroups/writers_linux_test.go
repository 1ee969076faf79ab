package cgroups

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func u64(v uint64) *uint64 { return &v }
func u16(v uint16) *uint16 { return &v }
func boolp(v bool) *bool   { return &v }

// fakeFiles creates dir with the given control files, mimicking cgroupfs:
// writers open files without O_CREAT, so a file missing here is a file the
// kernel would not have either.
func fakeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func readBack(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

var fakeV1Files = map[string]map[string]string{
	"cpu": {"cpu.shares": "1024", "cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "-1",
		"cpu.rt_period_us": "1000000", "cpu.rt_runtime_us": "0", "cpu.stat": "nr_periods 4\nnr_throttled 2\nthrottled_time 900\n",
		"cgroup.procs": ""},
	"cpuacct": {"cpuacct.usage": "5000", "cpuacct.usage_percpu": "2000 3000 \n", "cpuacct.stat": "user 3\nsystem 1\n", "cgroup.procs": ""},
	"cpuset":  {"cpuset.cpus": "0-3", "cpuset.mems": "0", "cgroup.procs": ""},
	"memory": {"memory.limit_in_bytes": "9223372036854771712", "memory.memsw.limit_in_bytes": "9223372036854771712",
		"memory.soft_limit_in_bytes": "", "memory.swappiness": "60", "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
		"memory.usage_in_bytes": "4096", "memory.max_usage_in_bytes": "8192", "memory.failcnt": "1",
		"memory.stat": "cache 12\nrss 34\n", "cgroup.procs": "10\n11\n"},
	"pids":    {"pids.max": "max", "pids.current": "2", "cgroup.procs": ""},
	"devices": {"devices.allow": "", "devices.deny": "", "cgroup.procs": ""},
	"freezer": {"freezer.state": "THAWED", "cgroup.procs": ""},
	"blkio": {"blkio.weight": "", "blkio.throttle.read_bps_device": "", "blkio.throttle.write_iops_device": "",
		"blkio.throttle.io_service_bytes_recursive": "8:0 Read 100\n8:0 Write 200\nTotal 300\n",
		"blkio.throttle.io_serviced_recursive":      "8:0 Read 1\n8:0 Write 2\nTotal 3\n", "cgroup.procs": ""},
}

// fakeV1 builds a legacy layout under a temp dir, with the container's
// cgroup /berth/x already created in every hierarchy listed.
func fakeV1(t *testing.T, ctrls ...string) (*v1Manager, string) {
	root := t.TempDir()
	ms := mounts{v1: map[string]mount{}}
	for _, c := range ctrls {
		ms.v1[c] = mount{dir: filepath.Join(root, c), root: "/"}
		fakeFiles(t, filepath.Join(root, c, "berth", "x"), fakeV1Files[c])
	}
	return newV1(ms, "/berth/x"), root
}

func TestV1Set(t *testing.T) {
	all := []string{"cpu", "cpuacct", "cpuset", "memory", "pids", "devices", "freezer", "blkio"}
	tests := []struct {
		name    string
		ctrls   []string
		r       specs.LinuxResources
		want    map[string]string // controller/file -> content
		wantErr string
	}{
		{
			name:  "memory",
			ctrls: all,
			r: specs.LinuxResources{Memory: &specs.LinuxMemory{
				Limit: i64(64 << 20), Swap: i64(128 << 20), Reservation: i64(32 << 20),
				Kernel: i64(1 << 20), Swappiness: u64(10), DisableOOMKiller: boolp(true),
			}},
			want: map[string]string{
				"memory/memory.limit_in_bytes":       "67108864",
				"memory/memory.memsw.limit_in_bytes": "134217728",
				"memory/memory.soft_limit_in_bytes":  "33554432",
				"memory/memory.swappiness":           "10",
				"memory/memory.oom_control":          "1",
			},
		},
		{
			name:    "swappiness out of range",
			ctrls:   all,
			r:       specs.LinuxResources{Memory: &specs.LinuxMemory{Swappiness: u64(101)}},
			wantErr: "swappiness",
		},
		{
			name:  "cpu",
			ctrls: all,
			r: specs.LinuxResources{CPU: &specs.LinuxCPU{
				Shares: u64(512), Quota: i64(50000), Period: u64(200000),
				RealtimePeriod: u64(1000000), RealtimeRuntime: i64(950000), Cpus: "1-2", Mems: "0",
			}},
			want: map[string]string{
				"cpu/cpu.shares":        "512",
				"cpu/cpu.cfs_quota_us":  "50000",
				"cpu/cpu.cfs_period_us": "200000",
				"cpu/cpu.rt_period_us":  "1000000",
				"cpu/cpu.rt_runtime_us": "950000",
				"cpuset/cpuset.cpus":    "1-2",
				"cpuset/cpuset.mems":    "0",
			},
		},
		{
			name:  "pids limit",
			ctrls: all,
			r:     specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(5)}},
			want:  map[string]string{"pids/pids.max": "5"},
		},
		{
			name:  "pids zero is unlimited",
			ctrls: all,
			r:     specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(0)}},
			want:  map[string]string{"pids/pids.max": "max"},
		},
		{
			name:  "blkio",
			ctrls: all,
			r: specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{
				Weight: u16(300),
				ThrottleReadBpsDevice: []specs.LinuxThrottleDevice{{
					LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Rate: 1048576}},
				ThrottleWriteIOPSDevice: []specs.LinuxThrottleDevice{{
					LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 16}, Rate: 100}},
			}},
			want: map[string]string{
				"blkio/blkio.weight":                     "300",
				"blkio/blkio.throttle.read_bps_device":   "8:0 1048576",
				"blkio/blkio.throttle.write_iops_device": "8:16 100",
			},
		},
		{
			name:  "devices: last rule of each file",
			ctrls: all,
			r: specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{
				{Allow: false, Access: "rwm"},
				{Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "rwm"},
				{Allow: true, Type: "c", Major: i64(136), Access: "rw"},
			}},
			want: map[string]string{
				"devices/devices.deny":  "a *:* rwm",
				"devices/devices.allow": "c 136:* rw",
			},
		},
		{
			name:    "missing controller for a requested limit",
			ctrls:   []string{"cpu", "memory"},
			r:       specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(5)}},
			wantErr: "pids controller",
		},
		{
			name:  "missing controller not needed",
			ctrls: []string{"memory"},
			r:     specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(1 << 30)}, CPU: &specs.LinuxCPU{}},
			want:  map[string]string{"memory/memory.limit_in_bytes": "1073741824"},
		},
		{
			name:    "net_cls requested but not mounted",
			ctrls:   all,
			r:       specs.LinuxResources{Network: &specs.LinuxNetwork{ClassID: func() *uint32 { v := uint32(0x100001); return &v }()}},
			wantErr: "net_cls controller",
		},
		{
			name:    "hugetlb requested on a legacy host without it",
			ctrls:   all,
			r:       specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 1 << 21}}},
			wantErr: "hugetlb controller",
		},
		{
			name:    "unified map on a legacy host",
			ctrls:   all,
			r:       specs.LinuxResources{Unified: map[string]string{"memory.high": "1G"}},
			wantErr: "only v1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, root := fakeV1(t, tt.ctrls...)
			err := m.Set(&tt.r)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Set error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for f, want := range tt.want {
				c, file, _ := strings.Cut(f, "/")
				if got := readBack(t, filepath.Join(root, c, "berth", "x", file)); got != want {
					t.Errorf("%s = %q, want %q", f, got, want)
				}
			}
		})
	}
}

func TestV1ApplyAndCpusetInit(t *testing.T) {
	root := t.TempDir()
	// A parent with cpus/mems, an intermediate and a leaf with empty ones
	// (as v1 creates them), in separate cpu and cpuacct hierarchies.
	fakeFiles(t, filepath.Join(root, "cpuset"), map[string]string{"cpuset.cpus": "0-7\n", "cpuset.mems": "0\n"})
	fakeFiles(t, filepath.Join(root, "cpuset", "berth"), map[string]string{"cpuset.cpus": "\n", "cpuset.mems": "\n"})
	fakeFiles(t, filepath.Join(root, "cpuset", "berth", "x"), map[string]string{"cpuset.cpus": "", "cpuset.mems": "", "cgroup.procs": ""})
	if err := initCpuset(filepath.Join(root, "cpuset", "berth", "x"), filepath.Join(root, "cpuset")); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"berth", "berth/x"} {
		if got := readBack(t, filepath.Join(root, "cpuset", d, "cpuset.cpus")); got != "0-7" {
			t.Errorf("%s cpuset.cpus = %q", d, got)
		}
		if got := readBack(t, filepath.Join(root, "cpuset", d, "cpuset.mems")); got != "0" {
			t.Errorf("%s cpuset.mems = %q", d, got)
		}
	}

	m, root2 := fakeV1(t, "cpu", "memory", "pids")
	if err := m.Apply(4242); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"cpu", "memory", "pids"} {
		if got := readBack(t, filepath.Join(root2, c, "berth", "x", "cgroup.procs")); got != "4242" {
			t.Errorf("%s cgroup.procs = %q", c, got)
		}
	}
}

func TestV1CoMounted(t *testing.T) {
	root := t.TempDir()
	mt := mount{dir: filepath.Join(root, "cpu,cpuacct"), root: "/"}
	m := newV1(mounts{v1: map[string]mount{"cpu": mt, "cpuacct": mt}}, "/berth/x")
	if got := m.uniqueDirs(); len(got) != 1 {
		t.Fatalf("uniqueDirs = %v, want one directory", got)
	}
}

func TestV1Reads(t *testing.T) {
	m, root := fakeV1(t, "cpu", "cpuacct", "memory", "pids", "blkio", "freezer")
	st, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.CPU.Usage.Total != 5000 || len(st.CPU.Usage.Percpu) != 2 || st.CPU.Usage.User != 30_000_000 || st.CPU.Usage.Kernel != 10_000_000 {
		t.Errorf("cpu usage = %+v", st.CPU.Usage)
	}
	if st.CPU.Throttling != (Throttling{4, 2, 900}) {
		t.Errorf("throttling = %+v", st.CPU.Throttling)
	}
	if st.Memory.Usage.Usage != 4096 || st.Memory.Usage.Max != 8192 || st.Memory.Usage.Failcnt != 1 || st.Memory.Cache != 12 || st.Memory.Raw["rss"] != 34 {
		t.Errorf("memory = %+v", st.Memory)
	}
	if st.Pids != (Pids{Current: 2, Limit: 0}) {
		t.Errorf("pids = %+v", st.Pids)
	}
	if len(st.Blkio.IoServiceBytesRecursive) != 2 || st.Blkio.IoServiceBytesRecursive[1] != (BlkioEntry{8, 0, "Write", 200}) {
		t.Errorf("blkio = %+v", st.Blkio)
	}
	if n, err := m.OOMKillCount(); err != nil || n != 2 {
		t.Errorf("OOMKillCount = %d, %v; want 2", n, err)
	}
	fakeFiles(t, filepath.Join(root, "memory", "berth", "x", "sub"), map[string]string{"cgroup.procs": "12\n"})
	pids, err := m.Pids()
	if err != nil || len(pids) != 3 || pids[2] != 12 {
		t.Errorf("Pids = %v, %v; want [10 11 12]", pids, err)
	}
	if f, err := m.Frozen(); err != nil || f {
		t.Errorf("Frozen = %v, %v", f, err)
	}
}

func fakeV2(t *testing.T, files map[string]string) *v2Manager {
	root := t.TempDir()
	fakeFiles(t, root, map[string]string{"cgroup.controllers": "cpu io memory pids", "cgroup.subtree_control": ""})
	fakeFiles(t, filepath.Join(root, "berth"), map[string]string{"cgroup.subtree_control": ""})
	fakeFiles(t, filepath.Join(root, "berth", "x"), files)
	return newV2(root, "/berth/x")
}

func TestV2Set(t *testing.T) {
	base := func() map[string]string {
		return map[string]string{
			"memory.max": "max", "memory.swap.max": "max", "memory.low": "0", "memory.high": "max",
			"cpu.weight": "100", "cpu.max": "max 100000", "cpuset.cpus": "", "cpuset.mems": "",
			"pids.max": "max", "io.weight": "default 100", "io.max": "", "hugetlb.2MB.max": "max",
			"cgroup.procs": "",
		}
	}
	tests := []struct {
		name    string
		files   map[string]string
		r       specs.LinuxResources
		want    map[string]string
		wantErr string
	}{
		{
			name: "memory with swap converted",
			r:    specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(100 << 20), Swap: i64(300 << 20), Reservation: i64(50 << 20)}},
			want: map[string]string{"memory.max": "104857600", "memory.swap.max": "209715200", "memory.low": "52428800"},
		},
		{
			name: "unlimited memory",
			r:    specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(-1)}},
			want: map[string]string{"memory.max": "max", "memory.swap.max": "max"},
		},
		{
			name:    "swap below memory",
			r:       specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(100), Swap: i64(50)}},
			wantErr: "lower than",
		},
		{
			name: "cpu shares, quota and period",
			r:    specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: u64(1024), Quota: i64(50000), Period: u64(100000), Cpus: "0", Mems: "0"}},
			want: map[string]string{"cpu.weight": "39", "cpu.max": "50000 100000", "cpuset.cpus": "0", "cpuset.mems": "0"},
		},
		{
			name:  "period alone keeps the quota",
			files: map[string]string{"cpu.max": "20000 100000"},
			r:     specs.LinuxResources{CPU: &specs.LinuxCPU{Period: u64(50000)}},
			want:  map[string]string{"cpu.max": "20000 50000"},
		},
		{
			name: "unlimited quota",
			r:    specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: i64(-1)}},
			want: map[string]string{"cpu.max": "max"},
		},
		{
			name: "pids negative is max",
			r:    specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(-1)}},
			want: map[string]string{"pids.max": "max"},
		},
		{
			name: "io",
			r: specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{
				Weight: u16(500),
				ThrottleWriteBpsDevice: []specs.LinuxThrottleDevice{{
					LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Rate: 4096}},
			}},
			want: map[string]string{"io.weight": "default 4950", "io.max": "8:0 wbps=4096"},
		},
		{
			name: "hugetlb and unified verbatim",
			r: specs.LinuxResources{
				HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 4 << 20}},
				Unified:        map[string]string{"memory.high": "50M"},
			},
			want: map[string]string{"hugetlb.2MB.max": "4194304", "memory.high": "50M"},
		},
		{
			name:    "unified key escaping the cgroup",
			r:       specs.LinuxResources{Unified: map[string]string{"../memory.max": "1"}},
			wantErr: "invalid unified key",
		},
		{
			name:    "unified key for a controller that is not enabled",
			r:       specs.LinuxResources{Unified: map[string]string{"rdma.max": "x"}},
			wantErr: "no such file",
		},
		{
			name:    "realtime is v1 only",
			r:       specs.LinuxResources{CPU: &specs.LinuxCPU{RealtimeRuntime: i64(1000)}},
			wantErr: "realtime",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := base()
			for k, v := range tt.files {
				files[k] = v
			}
			m := fakeV2(t, files)
			err := m.Set(&tt.r)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Set error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for f, want := range tt.want {
				if got := readBack(t, filepath.Join(m.dir, f)); got != want {
					t.Errorf("%s = %q, want %q", f, got, want)
				}
			}
		})
	}
}

func TestV2ApplyEnablesControllers(t *testing.T) {
	root := t.TempDir()
	fakeFiles(t, root, map[string]string{"cgroup.controllers": "cpu io memory pids\n", "cgroup.subtree_control": ""})
	fakeFiles(t, filepath.Join(root, "berth"), map[string]string{"cgroup.subtree_control": ""})
	m := newV2(root, "/berth/new")
	// The fake leaf gets its cgroup.procs only after mkdir, as a real one
	// would have it from the kernel: pre-create the parent, not the leaf.
	if err := m.Apply(1); err == nil {
		t.Fatal("Apply succeeded without cgroup.procs in the fake leaf")
	}
	for _, d := range []string{root, filepath.Join(root, "berth")} {
		if got := readBack(t, filepath.Join(d, "cgroup.subtree_control")); got != "+cpu +io +memory +pids" {
			t.Errorf("%s subtree_control = %q", d, got)
		}
	}
}

func TestV2Reads(t *testing.T) {
	m := fakeV2(t, map[string]string{
		"cpu.stat":            "usage_usec 10\nuser_usec 6\nsystem_usec 4\nnr_periods 3\nnr_throttled 1\nthrottled_usec 7\n",
		"memory.stat":         "anon 100\nfile 200\n",
		"memory.current":      "300\n",
		"memory.max":          "max\n",
		"memory.events":       "low 0\nhigh 0\nmax 5\noom 1\noom_kill 1\n",
		"memory.swap.current": "0\n",
		"memory.swap.max":     "max\n",
		"pids.current":        "3\n",
		"pids.max":            "10\n",
		"io.stat":             "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0\n",
		"cgroup.events":       "populated 1\nfrozen 1\n",
		"cgroup.procs":        "7\n",
	})
	st, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.CPU.Usage.Total != 10_000 || st.CPU.Usage.User != 6_000 || st.CPU.Throttling.ThrottledTime != 7_000 {
		t.Errorf("cpu = %+v", st.CPU)
	}
	if st.Memory.Usage.Usage != 300 || st.Memory.Usage.Limit != ^uint64(0) || st.Memory.Cache != 200 || st.Memory.Usage.Failcnt != 5 {
		t.Errorf("memory = %+v", st.Memory)
	}
	if st.Pids != (Pids{3, 10}) {
		t.Errorf("pids = %+v", st.Pids)
	}
	if len(st.Blkio.IoServiceBytesRecursive) != 2 || len(st.Blkio.IoServicedRecursive) != 2 {
		t.Errorf("blkio = %+v", st.Blkio)
	}
	if n, err := m.OOMKillCount(); err != nil || n != 1 {
		t.Errorf("OOMKillCount = %d, %v", n, err)
	}
	if f, err := m.Frozen(); err != nil || !f {
		t.Errorf("Frozen = %v, %v", f, err)
	}
	if pids, err := m.Pids(); err != nil || len(pids) != 1 || pids[0] != 7 {
		t.Errorf("Pids = %v, %v", pids, err)
	}
}

func TestV1DeviceRule(t *testing.T) {
	tests := []struct {
		name string
		rule specs.LinuxDeviceCgroup
		want string
	}{
		{"wildcard", specs.LinuxDeviceCgroup{}, "a *:* rwm"},
		{"char with numbers", specs.LinuxDeviceCgroup{Type: "c", Major: i64(1), Minor: i64(3), Access: "rw"}, "c 1:3 rw"},
		{"block any minor", specs.LinuxDeviceCgroup{Type: "b", Major: i64(8), Minor: i64(-1)}, "b 8:* rwm"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := v1DeviceRule(tt.rule)
			if err != nil || got != tt.want {
				t.Errorf("v1DeviceRule = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestDetectModeOnTempDir(t *testing.T) {
	// A plain directory is neither cgroup2 nor has a cgroup2 "unified".
	if got := detectMode(t.TempDir()); got != Legacy {
		t.Errorf("detectMode(tmp) = %v, want legacy", got)
	}
}
