package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/volume"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func testRootfs(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n",
		"etc/group":  "root:x:0:\napp:x:1000:\nvideo:x:44:app\n",
	}
	for p, s := range files {
		if err := os.WriteFile(filepath.Join(root, p), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func testContainer(hc container.HostConfig) *Container {
	return &Container{
		ID:         strings.Repeat("ab", 32),
		Config:     container.Config{Cmd: []string{"sh"}, Hostname: "box"},
		HostConfig: hc,
	}
}

func findMount(s *specs.Spec, dst string) *specs.Mount {
	for i := range s.Mounts {
		if s.Mounts[i].Destination == dst {
			return &s.Mounts[i]
		}
	}
	return nil
}

func i64p(v int64) *int64 { return &v }

func TestBuildSpec(t *testing.T) {
	if !heldCaps()(21) {
		t.Skip("needs CAP_SYS_ADMIN in the bounding set to compute --cap-add results")
	}
	rootfs := testRootfs(t)
	yes := true
	volDir := func(name string) string { return "/vol/" + name + "/_data" }
	env := specEnv{volumePath: volDir, initPath: "/usr/local/bin/berth-init"}
	for _, tc := range []struct {
		name  string
		hc    container.HostConfig
		check func(t *testing.T, s *specs.Spec)
	}{
		{"defaults", container.HostConfig{}, func(t *testing.T, s *specs.Spec) {
			if !reflect.DeepEqual(s.Process.Capabilities.Bounding, defaultCaps) {
				t.Errorf("caps %v", s.Process.Capabilities.Bounding)
			}
			if s.Linux.Seccomp == nil || s.Linux.Seccomp.DefaultAction != specs.ActErrno {
				t.Fatalf("default seccomp missing")
			}
			if s.Process.NoNewPrivileges || s.Root.Readonly || len(s.Linux.MaskedPaths) == 0 {
				t.Errorf("defaults: nnp %v ro %v masked %v", s.Process.NoNewPrivileges, s.Root.Readonly, s.Linux.MaskedPaths)
			}
			if m := findMount(s, "/sys"); m == nil || !slices.Contains(m.Options, "ro") {
				t.Errorf("/sys not read-only: %+v", m)
			}
			if d := s.Linux.Resources.Devices; len(d) != 1 || d[0].Allow {
				t.Errorf("device cgroup %+v", d)
			}
			if s.Process.OOMScoreAdj != nil || s.Linux.Resources.Memory != nil || s.Linux.Resources.Pids != nil {
				t.Errorf("unexpected limits")
			}
		}},
		{"cap-add and drop", container.HostConfig{CapAdd: []string{"sys_admin", "CAP_NET_ADMIN"}, CapDrop: []string{"chown", "CAP_KILL"}},
			func(t *testing.T, s *specs.Spec) {
				c := s.Process.Capabilities.Effective
				if !slices.Contains(c, "CAP_SYS_ADMIN") || !slices.Contains(c, "CAP_NET_ADMIN") || slices.Contains(c, "CAP_CHOWN") || slices.Contains(c, "CAP_KILL") {
					t.Errorf("caps %v", c)
				}
				// The default profile's CAP_SYS_ADMIN rules now apply.
				if !seccompAllows(s.Linux.Seccomp, "mount") {
					t.Error("seccomp does not allow mount with CAP_SYS_ADMIN")
				}
			}},
		{"cap-drop ALL", container.HostConfig{CapAdd: []string{"NET_BIND_SERVICE"}, CapDrop: []string{"ALL"}},
			func(t *testing.T, s *specs.Spec) {
				if !reflect.DeepEqual(s.Process.Capabilities.Bounding, []string{"CAP_NET_BIND_SERVICE"}) {
					t.Errorf("caps %v", s.Process.Capabilities.Bounding)
				}
			}},
		{"cap-add ALL", container.HostConfig{CapAdd: []string{"ALL"}, CapDrop: []string{"MKNOD"}},
			func(t *testing.T, s *specs.Spec) {
				c := s.Process.Capabilities.Bounding
				if !slices.Contains(c, "CAP_SYS_ADMIN") || slices.Contains(c, "CAP_MKNOD") || len(c) < 30 {
					t.Errorf("caps %v", c)
				}
			}},
		{"privileged", container.HostConfig{Privileged: true}, func(t *testing.T, s *specs.Spec) {
			if s.Linux.Seccomp != nil || len(s.Linux.MaskedPaths) != 0 || len(s.Linux.ReadonlyPaths) != 0 {
				t.Errorf("privileged keeps confinement")
			}
			if !slices.Contains(s.Process.Capabilities.Bounding, "CAP_SYS_ADMIN") {
				t.Errorf("caps %v", s.Process.Capabilities.Bounding)
			}
			if m := findMount(s, "/sys"); m == nil || !slices.Contains(m.Options, "rw") {
				t.Errorf("/sys %+v", m)
			}
			if d := s.Linux.Resources.Devices; len(d) != 1 || !d[0].Allow {
				t.Errorf("device cgroup %+v", d)
			}
			found := false
			for _, d := range s.Linux.Devices {
				found = found || d.Path == "/dev/null"
			}
			if !found {
				t.Error("host devices not listed")
			}
		}},
		{"security opts", container.HostConfig{SecurityOpt: []string{"no-new-privileges:true", "seccomp=unconfined", "systempaths=unconfined", "label=disable"}},
			func(t *testing.T, s *specs.Spec) {
				if !s.Process.NoNewPrivileges || s.Linux.Seccomp != nil || len(s.Linux.MaskedPaths) != 0 {
					t.Errorf("nnp %v seccomp %v masked %v", s.Process.NoNewPrivileges, s.Linux.Seccomp != nil, s.Linux.MaskedPaths)
				}
			}},
		{"inline seccomp profile", container.HostConfig{SecurityOpt: []string{`seccomp={"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}`}},
			func(t *testing.T, s *specs.Spec) {
				sc := s.Linux.Seccomp
				if sc == nil || sc.DefaultAction != specs.ActAllow || len(sc.Syscalls) != 1 || sc.Syscalls[0].Names[0] != "mkdir" {
					t.Errorf("seccomp %+v", sc)
				}
			}},
		{"device", container.HostConfig{Resources: container.Resources{Devices: []container.DeviceMapping{{PathOnHost: "/dev/null", PathInContainer: "/dev/mynull", CgroupPermissions: "rw"}}}},
			func(t *testing.T, s *specs.Spec) {
				if len(s.Linux.Devices) != 1 || s.Linux.Devices[0].Path != "/dev/mynull" || s.Linux.Devices[0].Major != 1 || s.Linux.Devices[0].Minor != 3 {
					t.Fatalf("devices %+v", s.Linux.Devices)
				}
				d := s.Linux.Resources.Devices
				if len(d) != 2 || !d[1].Allow || d[1].Access != "rw" || *d[1].Major != 1 || *d[1].Minor != 3 {
					t.Errorf("rules %+v", d)
				}
			}},
		{"ulimits", container.HostConfig{Resources: container.Resources{Ulimits: []*container.Ulimit{{Name: "nofile", Soft: 100, Hard: 200}}}},
			func(t *testing.T, s *specs.Spec) {
				want := []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 100, Hard: 200}}
				if !reflect.DeepEqual(s.Process.Rlimits, want) {
					t.Errorf("rlimits %+v", s.Process.Rlimits)
				}
			}},
		{"sysctl", container.HostConfig{Sysctls: map[string]string{"net.ipv4.ip_unprivileged_port_start": "0"}},
			func(t *testing.T, s *specs.Spec) {
				if s.Linux.Sysctl["net.ipv4.ip_unprivileged_port_start"] != "0" {
					t.Errorf("sysctl %v", s.Linux.Sysctl)
				}
			}},
		{"memory", container.HostConfig{Resources: container.Resources{Memory: 64 << 20, MemoryReservation: 32 << 20}},
			func(t *testing.T, s *specs.Spec) {
				m := s.Linux.Resources.Memory
				if *m.Limit != 64<<20 || *m.Swap != 128<<20 || *m.Reservation != 32<<20 {
					t.Errorf("memory %d %d %d", *m.Limit, *m.Swap, *m.Reservation)
				}
			}},
		{"memory-swap unlimited", container.HostConfig{Resources: container.Resources{Memory: 64 << 20, MemorySwap: -1}},
			func(t *testing.T, s *specs.Spec) {
				if *s.Linux.Resources.Memory.Swap != -1 {
					t.Errorf("swap %d", *s.Linux.Resources.Memory.Swap)
				}
			}},
		{"cpus", container.HostConfig{Resources: container.Resources{NanoCPUs: 1500000000, CPUShares: 512, CpusetCpus: "0"}},
			func(t *testing.T, s *specs.Spec) {
				c := s.Linux.Resources.CPU
				if *c.Quota != 150000 || *c.Period != 100000 || *c.Shares != 512 || c.Cpus != "0" {
					t.Errorf("cpu %d/%d shares %d cpus %q", *c.Quota, *c.Period, *c.Shares, c.Cpus)
				}
			}},
		{"pids-limit", container.HostConfig{Resources: container.Resources{PidsLimit: i64p(20)}},
			func(t *testing.T, s *specs.Spec) {
				if *s.Linux.Resources.Pids.Limit != 20 {
					t.Errorf("pids %d", *s.Linux.Resources.Pids.Limit)
				}
			}},
		{"pids-limit zero is unlimited", container.HostConfig{Resources: container.Resources{PidsLimit: i64p(0)}},
			func(t *testing.T, s *specs.Spec) {
				if *s.Linux.Resources.Pids.Limit != -1 {
					t.Errorf("pids %d", *s.Linux.Resources.Pids.Limit)
				}
			}},
		{"oom-score-adj up", container.HostConfig{OomScoreAdj: 500},
			func(t *testing.T, s *specs.Spec) {
				if s.Process.OOMScoreAdj == nil || *s.Process.OOMScoreAdj != 500 {
					t.Errorf("oom %v", s.Process.OOMScoreAdj)
				}
			}},
		{"shm-size", container.HostConfig{ShmSize: 1 << 20},
			func(t *testing.T, s *specs.Spec) {
				if m := findMount(s, "/dev/shm"); m == nil || !slices.Contains(m.Options, "size=1048576") {
					t.Errorf("/dev/shm %+v", m)
				}
			}},
		{"read-only", container.HostConfig{ReadonlyRootfs: true},
			func(t *testing.T, s *specs.Spec) {
				if !s.Root.Readonly {
					t.Error("root not read-only")
				}
			}},
		{"binds and volumes", container.HostConfig{Binds: []string{"/srv/data:/data:ro,rslave", "cache:/var/cache", "/anon"}},
			func(t *testing.T, s *specs.Spec) {
				if m := findMount(s, "/data"); m == nil || m.Source != "/srv/data" || !reflect.DeepEqual(m.Options, []string{"rbind", "rslave", "ro"}) {
					t.Errorf("/data %+v", m)
				}
				if m := findMount(s, "/var/cache"); m == nil || m.Source != "/vol/cache/_data" || slices.Contains(m.Options, "ro") {
					t.Errorf("/var/cache %+v", m)
				}
				want := "/vol/" + anonymousVolumeName(strings.Repeat("ab", 32), "/anon") + "/_data"
				if m := findMount(s, "/anon"); m == nil || m.Source != want {
					t.Errorf("/anon %+v", m)
				}
			}},
		{"tmpfs replaces /dev/shm", container.HostConfig{Tmpfs: map[string]string{"/dev/shm": "size=1m", "/run": "ro"}},
			func(t *testing.T, s *specs.Spec) {
				n := 0
				for _, m := range s.Mounts {
					if m.Destination == "/dev/shm" {
						n++
						if !slices.Contains(m.Options, "size=1m") {
							t.Errorf("/dev/shm %+v", m)
						}
					}
				}
				if n != 1 {
					t.Errorf("%d mounts on /dev/shm", n)
				}
				if m := findMount(s, "/run"); m == nil || m.Type != "tmpfs" || !slices.Contains(m.Options, "ro") || !slices.Contains(m.Options, "noexec") {
					t.Errorf("/run %+v", m)
				}
			}},
		{"mounts ordered parent first", container.HostConfig{Mounts: []mount.Mount{
			{Type: mount.TypeTmpfs, Target: "/a/b/c"}, {Type: mount.TypeBind, Source: "/x", Target: "/a"},
			{Type: mount.TypeTmpfs, Target: "/t", TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 4096, Mode: os.ModeSticky | 0o777}},
		}}, func(t *testing.T, s *specs.Spec) {
			a, c := slices.IndexFunc(s.Mounts, func(m specs.Mount) bool { return m.Destination == "/a" }),
				slices.IndexFunc(s.Mounts, func(m specs.Mount) bool { return m.Destination == "/a/b/c" })
			if a < 0 || c < 0 || a > c {
				t.Errorf("order: /a at %d, /a/b/c at %d", a, c)
			}
			if m := findMount(s, "/t"); m == nil || !slices.Contains(m.Options, "size=4096") || !slices.Contains(m.Options, "mode=1777") {
				t.Errorf("/t %+v", m)
			}
		}},
		{"init", container.HostConfig{Init: &yes}, func(t *testing.T, s *specs.Spec) {
			if !reflect.DeepEqual(s.Process.Args, []string{initPathInContainer, "--", "sh"}) {
				t.Errorf("args %v", s.Process.Args)
			}
			if m := findMount(s, initPathInContainer); m == nil || m.Source != "/usr/local/bin/berth-init" || !slices.Contains(m.Options, "ro") {
				t.Errorf("init mount %+v", m)
			}
		}},
		{"group-add", container.HostConfig{GroupAdd: []string{"video", "123"}}, func(t *testing.T, s *specs.Spec) {
			if !reflect.DeepEqual(s.Process.User.AdditionalGids, []uint32{44, 123}) {
				t.Errorf("gids %v", s.Process.User.AdditionalGids)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := buildSpecEnv(testContainer(tc.hc), rootfs, env)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, s)
		})
	}
}

func seccompAllows(sc *specs.LinuxSeccomp, name string) bool {
	for _, r := range sc.Syscalls {
		if r.Action == specs.ActAllow && len(r.Args) == 0 && slices.Contains(r.Names, name) {
			return true
		}
	}
	return false
}

func TestBuildSpecErrors(t *testing.T) {
	rootfs := testRootfs(t)
	yes := true
	for _, tc := range []struct {
		name string
		hc   container.HostConfig
		env  specEnv
		want error
		msg  string
	}{
		{"unknown cap", container.HostConfig{CapAdd: []string{"FLY"}}, specEnv{}, errdefs.ErrInvalidArgument, "unknown capability"},
		{"bad security opt", container.HostConfig{SecurityOpt: []string{"colour=red"}}, specEnv{}, errdefs.ErrInvalidArgument, "security-opt"},
		{"bad seccomp json", container.HostConfig{SecurityOpt: []string{"seccomp={"}}, specEnv{}, errdefs.ErrInvalidArgument, "seccomp"},
		{"tiny memory", container.HostConfig{Resources: container.Resources{Memory: 1 << 20}}, specEnv{}, errdefs.ErrInvalidArgument, "6MB"},
		{"swap below memory", container.HostConfig{Resources: container.Resources{Memory: 64 << 20, MemorySwap: 32 << 20}}, specEnv{}, errdefs.ErrInvalidArgument, "memoryswap"},
		{"swap without memory", container.HostConfig{Resources: container.Resources{MemorySwap: 64 << 20}}, specEnv{}, errdefs.ErrInvalidArgument, "memory limit"},
		{"bad ulimit", container.HostConfig{Resources: container.Resources{Ulimits: []*container.Ulimit{{Name: "wings", Soft: 1, Hard: 1}}}}, specEnv{}, errdefs.ErrInvalidArgument, "ulimit"},
		{"host sysctl", container.HostConfig{Sysctls: map[string]string{"kernel.panic": "1"}}, specEnv{}, errdefs.ErrInvalidArgument, "not allowed"},
		{"oom range", container.HostConfig{OomScoreAdj: 1001}, specEnv{}, errdefs.ErrInvalidArgument, "range"},
		{"missing device", container.HostConfig{Resources: container.Resources{Devices: []container.DeviceMapping{{PathOnHost: "/dev/nope"}}}}, specEnv{}, os.ErrNotExist, "/dev/nope"},
		{"not a device", container.HostConfig{Resources: container.Resources{Devices: []container.DeviceMapping{{PathOnHost: "/etc/hostname"}}}}, specEnv{}, errdefs.ErrInvalidArgument, "not a device"},
		{"bind to /", container.HostConfig{Binds: []string{"/x:/"}}, specEnv{}, errdefs.ErrInvalidArgument, "destination can't be '/'"},
		{"bad bind mode", container.HostConfig{Binds: []string{"/x:/y:rx"}}, specEnv{}, errdefs.ErrInvalidArgument, "invalid mode"},
		{"bad volume name", container.HostConfig{Binds: []string{"a*b:/y"}}, specEnv{}, errdefs.ErrInvalidArgument, "invalid characters"},
		{"duplicate mount", container.HostConfig{Binds: []string{"/x:/y"}, Tmpfs: map[string]string{"/y": ""}}, specEnv{}, errdefs.ErrInvalidArgument, "duplicate mount point"},
		{"bad tmpfs option", container.HostConfig{Tmpfs: map[string]string{"/y": "colour=red"}}, specEnv{}, errdefs.ErrInvalidArgument, "tmpfs option"},
		{"volume without engine", container.HostConfig{Binds: []string{"data:/data"}}, specEnv{}, errdefs.ErrNotSupported, "volume"},
		{"init not found", container.HostConfig{Init: &yes}, specEnv{}, errdefs.ErrNotFound, "berth-init"},
		{"privileged userns", container.HostConfig{Privileged: true, UsernsMode: "auto"}, specEnv{}, errdefs.ErrInvalidArgument, "privileged"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := buildSpecEnv(testContainer(tc.hc), rootfs, tc.env)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("got %v, want %v containing %q", err, tc.want, tc.msg)
			}
			// Create checks the same, except what needs the engine.
			if tc.want != errdefs.ErrNotSupported && tc.want != errdefs.ErrNotFound {
				if err := validateHostConfig(testContainer(tc.hc)); !errors.Is(err, tc.want) {
					t.Fatalf("validateHostConfig: got %v, want %v", err, tc.want)
				}
			}
		})
	}
}

func TestDefaultSeccompProfile(t *testing.T) {
	sc, err := seccompFromProfile(defaultSeccompJSON, defaultCaps)
	if err != nil {
		t.Fatal(err)
	}
	if sc.DefaultAction != specs.ActErrno || sc.DefaultErrnoRet == nil || *sc.DefaultErrnoRet != 1 {
		t.Fatalf("default action %v %v", sc.DefaultAction, sc.DefaultErrnoRet)
	}
	if len(sc.Architectures) == 0 {
		t.Fatal("no architectures for this machine")
	}
	for _, name := range []string{"read", "write", "execve", "openat", "exit_group"} {
		if !seccompAllows(sc, name) {
			t.Errorf("%s not allowed", name)
		}
	}
	// clone is allowed only without namespace flags: an argument filter.
	cloneArgs := false
	for _, r := range sc.Syscalls {
		cloneArgs = cloneArgs || (slices.Contains(r.Names, "clone") && len(r.Args) > 0 && r.Action == specs.ActAllow)
	}
	if !cloneArgs {
		t.Error("clone has no argument filter")
	}
	// Only allowed with CAP_SYS_ADMIN (or not at all) in Docker's profile.
	for _, name := range []string{"mount", "unshare", "keyctl", "add_key", "bpf", "reboot", "setns"} {
		if seccompAllows(sc, name) {
			t.Errorf("%s allowed without capabilities", name)
		}
	}
	withAdmin, err := seccompFromProfile(defaultSeccompJSON, append(append([]string{}, defaultCaps...), "CAP_SYS_ADMIN"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"mount", "unshare", "setns"} {
		if !seccompAllows(withAdmin, name) {
			t.Errorf("%s not allowed with CAP_SYS_ADMIN", name)
		}
	}
}

func TestContainerMounts(t *testing.T) {
	c := testContainer(container.HostConfig{Binds: []string{"named:/n:ro,nocopy", "/anon"}})
	c.Config.Volumes = map[string]struct{}{"/anon": {}, "/image-vol": {}}
	mps, err := containerMounts(c)
	if err != nil {
		t.Fatal(err)
	}
	want := []mountPoint{
		{Type: mount.TypeVolume, Source: "named", Destination: "/n", NoCopy: true},
		{Type: mount.TypeVolume, Source: anonymousVolumeName(c.ID, "/anon"), Destination: "/anon", RW: true, Anonymous: true},
		{Type: mount.TypeVolume, Source: anonymousVolumeName(c.ID, "/image-vol"), Destination: "/image-vol", RW: true, Anonymous: true},
	}
	if !reflect.DeepEqual(mps, want) {
		t.Fatalf("got %+v\nwant %+v", mps, want)
	}
	if anonymousVolumeName(c.ID, "/a") == anonymousVolumeName("other", "/a") {
		t.Fatal("anonymous names collide across containers")
	}
}

func TestPrepareCreate(t *testing.T) {
	e := &Engine{opts: Options{Root: t.TempDir()}}
	ctx := context.Background()
	c := testContainer(container.HostConfig{Binds: []string{"named:/n", "/anon"}})
	if err := e.prepareCreate(ctx, c); err != nil {
		t.Fatal(err)
	}
	anon, err := e.VolumeInspect(ctx, anonymousVolumeName(c.ID, "/anon"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := anon.Labels[volume.LabelAnonymous]; !ok {
		t.Fatalf("anonymous label missing: %v", anon.Labels)
	}
	if _, err := e.VolumeInspect(ctx, "named"); err != nil {
		t.Fatal(err)
	}
	bad := testContainer(container.HostConfig{CapAdd: []string{"FLY"}, Binds: []string{"never:/x"}})
	if err := e.prepareCreate(ctx, bad); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("bad flags: %v", err)
	}
	if _, err := e.VolumeInspect(ctx, "never"); !errdefs.IsNotFound(err) {
		t.Fatalf("volume created for a refused container: %v", err)
	}
}
