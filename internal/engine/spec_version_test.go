package engine

import (
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestOCIVersion(t *testing.T) {
	one := uint(1)
	idle := int64(1)
	base := func() *specs.Spec {
		return &specs.Spec{
			Process: &specs.Process{Args: []string{"true"}, Cwd: "/"},
			Root:    &specs.Root{Path: "rootfs"},
			Mounts:  []specs.Mount{{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid"}}},
			Linux: &specs.Linux{
				Namespaces: []specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.MountNamespace}},
				Seccomp: &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Flags: []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog},
					Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow}}},
			},
		}
	}
	tests := []struct {
		name   string
		change func(*specs.Spec)
		want   string
	}{
		{"1.0 content", func(*specs.Spec) {}, "1.0.2"},
		{"no linux section", func(s *specs.Spec) { s.Linux = nil }, "1.0.2"},
		{"seccomp defaultErrnoRet", func(s *specs.Spec) { s.Linux.Seccomp.DefaultErrnoRet = &one }, "1.1.0"},
		{"syscall errnoRet", func(s *specs.Spec) { s.Linux.Seccomp.Syscalls[0].ErrnoRet = &one }, "1.1.0"},
		{"seccomp kill process", func(s *specs.Spec) { s.Linux.Seccomp.DefaultAction = specs.ActKillProcess }, "1.1.0"},
		{"seccomp notify", func(s *specs.Spec) { s.Linux.Seccomp.Syscalls[0].Action = specs.ActNotify }, "1.1.0"},
		{"rro bind", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Type: "bind", Source: "/srv", Options: []string{"rbind", "rro"}})
		}, "1.1.0"},
		{"plain ro bind", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Type: "bind", Source: "/srv", Options: []string{"rbind", "ro"}})
		}, "1.0.2"},
		{"mount id mapping", func(s *specs.Spec) {
			s.Mounts[0].UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}}
		}, "1.1.0"},
		{"idmap option", func(s *specs.Spec) { s.Mounts[0].Options = append(s.Mounts[0].Options, "idmap") }, "1.2.0"},
		{"relative destination", func(s *specs.Spec) { s.Mounts[0].Destination = "proc" }, "1.2.0"},
		{"domainname", func(s *specs.Spec) { s.Domainname = "example.org" }, "1.1.0"},
		{"time namespace", func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.TimeNamespace})
		}, "1.1.0"},
		{"cgroup v2 unified", func(s *specs.Spec) {
			s.Linux.Resources = &specs.LinuxResources{Unified: map[string]string{"memory.high": "1G"}}
		}, "1.1.0"},
		{"cpu idle", func(s *specs.Spec) {
			s.Linux.Resources = &specs.LinuxResources{CPU: &specs.LinuxCPU{Idle: &idle}}
		}, "1.1.0"},
		{"exec cpu affinity", func(s *specs.Spec) {
			s.Process.ExecCPUAffinity = &specs.CPUAffinity{Initial: "0"}
		}, "1.2.1"},
		{"net devices", func(s *specs.Spec) {
			s.Linux.NetDevices = map[string]specs.LinuxNetDevice{"eth1": {}}
		}, "1.3.0"},
		{"newest wins over older", func(s *specs.Spec) {
			s.Linux.Seccomp.DefaultErrnoRet = &one
			s.Mounts[0].Options = append(s.Mounts[0].Options, "ridmap")
		}, "1.2.0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := base()
			tc.change(s)
			if got := ociVersion(s); got != tc.want {
				t.Errorf("ociVersion = %s, want %s", got, tc.want)
			}
		})
	}
}

// TestOCIVersionDefaultContainer: the config of a default container (the
// default seccomp profile answers ENOSYS through errnoRet) declares 1.1.0,
// the newest version crun 1.8 accepts, whatever runtime-spec module the
// engine is built with.
func TestOCIVersionDefaultContainer(t *testing.T) {
	c := &Container{ID: "0123456789ab"}
	c.Config.Cmd = []string{"true"}
	s, err := buildSpec(c, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if s.Version != "1.1.0" {
		t.Errorf("ociVersion %s, want 1.1.0", s.Version)
	}
}
