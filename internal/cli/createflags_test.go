package cli

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/engine"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/spf13/cobra"
)

// parseCreate runs the create flag set over args as `berth create` would.
func parseCreate(t *testing.T, args ...string) (engine.CreateOptions, error) {
	t.Helper()
	f := &createFlags{}
	cmd := &cobra.Command{Use: "create"}
	cmd.Flags().SetInterspersed(false)
	f.register(cmd.Flags())
	if err := cmd.Flags().Parse(args); err != nil {
		return engine.CreateOptions{}, err
	}
	return f.options(cmd, cmd.Flags().Args())
}

func i64(v int64) *int64 { return &v }

func TestCreateFlags(t *testing.T) {
	seccompFile := filepath.Join(t.TempDir(), "profile.json")
	if err := os.WriteFile(seccompFile, []byte("{\n  \"defaultAction\": \"SCMP_ACT_ALLOW\"\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	yes := true
	ten := 10
	for _, tc := range []struct {
		name  string
		args  []string
		check func(o engine.CreateOptions) any // what the options give
		want  any
	}{
		{"cap-add and cap-drop", []string{"--cap-add", "NET_ADMIN", "--cap-add=sys_time", "--cap-drop", "ALL"},
			func(o engine.CreateOptions) any { return [][]string{o.HostConfig.CapAdd, o.HostConfig.CapDrop} },
			[][]string{{"NET_ADMIN", "sys_time"}, {"ALL"}}},
		{"privileged", []string{"--privileged"},
			func(o engine.CreateOptions) any { return o.HostConfig.Privileged }, true},
		{"security-opt kept", []string{"--security-opt", "no-new-privileges", "--security-opt", "seccomp=unconfined"},
			func(o engine.CreateOptions) any { return o.HostConfig.SecurityOpt },
			[]string{"no-new-privileges", "seccomp=unconfined"}},
		{"seccomp file inlined", []string{"--security-opt", "seccomp=" + seccompFile},
			func(o engine.CreateOptions) any { return o.HostConfig.SecurityOpt },
			[]string{`seccomp={"defaultAction":"SCMP_ACT_ALLOW"}`}},
		{"device forms", []string{"--device", "/dev/fuse", "--device", "/dev/null:/dev/mynull", "--device", "/dev/zero:r", "--device", "/dev/zero:/z:rw"},
			func(o engine.CreateOptions) any { return o.HostConfig.Devices },
			[]container.DeviceMapping{
				{PathOnHost: "/dev/fuse", PathInContainer: "/dev/fuse", CgroupPermissions: "rwm"},
				{PathOnHost: "/dev/null", PathInContainer: "/dev/mynull", CgroupPermissions: "rwm"},
				{PathOnHost: "/dev/zero", PathInContainer: "/dev/zero", CgroupPermissions: "r"},
				{PathOnHost: "/dev/zero", PathInContainer: "/z", CgroupPermissions: "rw"},
			}},
		{"ulimit", []string{"--ulimit", "nofile=1024:2048", "--ulimit", "nproc=50"},
			func(o engine.CreateOptions) any {
				var out []container.Ulimit
				for _, u := range o.HostConfig.Ulimits {
					out = append(out, *u)
				}
				return out
			},
			[]container.Ulimit{{Name: "nofile", Soft: 1024, Hard: 2048}, {Name: "nproc", Soft: 50, Hard: 50}}},
		{"sysctl", []string{"--sysctl", "net.ipv4.ip_forward=1", "--sysctl", "kernel.shmmax=100"},
			func(o engine.CreateOptions) any { return o.HostConfig.Sysctls },
			map[string]string{"net.ipv4.ip_forward": "1", "kernel.shmmax": "100"}},
		{"memory flags", []string{"-m", "64m", "--memory-swap", "-1", "--memory-reservation", "32m"},
			func(o engine.CreateOptions) any {
				r := o.HostConfig.Resources
				return []int64{r.Memory, r.MemorySwap, r.MemoryReservation}
			}, []int64{64 << 20, -1, 32 << 20}},
		{"memory-swap size", []string{"-m", "1g", "--memory-swap", "2g"},
			func(o engine.CreateOptions) any { return o.HostConfig.MemorySwap }, int64(2 << 30)},
		{"cpus", []string{"--cpus", "1.5", "-c", "512", "--cpuset-cpus", "0-1"},
			func(o engine.CreateOptions) any {
				r := o.HostConfig.Resources
				return []any{r.NanoCPUs, r.CPUShares, r.CpusetCpus}
			}, []any{int64(1500000000), int64(512), "0-1"}},
		{"pids-limit set", []string{"--pids-limit", "20"},
			func(o engine.CreateOptions) any { return o.HostConfig.PidsLimit }, i64(20)},
		{"pids-limit unset", nil,
			func(o engine.CreateOptions) any { return o.HostConfig.PidsLimit }, (*int64)(nil)},
		{"oom-score-adj", []string{"--oom-score-adj", "-500"},
			func(o engine.CreateOptions) any { return o.HostConfig.OomScoreAdj }, -500},
		{"read-only", []string{"--read-only"},
			func(o engine.CreateOptions) any { return o.HostConfig.ReadonlyRootfs }, true},
		{"tmpfs", []string{"--tmpfs", "/run", "--tmpfs", "/tmp:size=1m,exec"},
			func(o engine.CreateOptions) any { return o.HostConfig.Tmpfs },
			map[string]string{"/run": "", "/tmp": "size=1m,exec"}},
		{"volumes", []string{"-v", "/host:/ctr:ro", "-v", "data:/data", "--volume", "/anon"},
			func(o engine.CreateOptions) any { return o.HostConfig.Binds },
			[]string{"/host:/ctr:ro", "data:/data", "/anon"}},
		{"mount bind", []string{"--mount", "type=bind,source=/src,target=/dst,readonly,bind-propagation=rslave"},
			func(o engine.CreateOptions) any { return o.HostConfig.Mounts },
			[]mount.Mount{{Type: mount.TypeBind, Source: "/src", Target: "/dst", ReadOnly: true,
				BindOptions: &mount.BindOptions{Propagation: mount.PropagationRSlave}}}},
		{"mount volume default type", []string{"--mount", "src=data,dst=/data,volume-nocopy,volume-label=a=b"},
			func(o engine.CreateOptions) any { return o.HostConfig.Mounts },
			[]mount.Mount{{Type: mount.TypeVolume, Source: "data", Target: "/data",
				VolumeOptions: &mount.VolumeOptions{NoCopy: true, Labels: map[string]string{"a": "b"}}}}},
		{"mount tmpfs", []string{"--mount", "type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1770"},
			func(o engine.CreateOptions) any { return o.HostConfig.Mounts },
			[]mount.Mount{{Type: mount.TypeTmpfs, Target: "/t",
				TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 1 << 20, Mode: os.ModeSticky | 0o770}}}},
		{"init", []string{"--init"},
			func(o engine.CreateOptions) any { return o.HostConfig.Init }, &yes},
		{"userns", []string{"--userns", "100000:100000:65536"},
			func(o engine.CreateOptions) any { return o.HostConfig.UsernsMode }, container.UsernsMode("100000:100000:65536")},
		{"hostname", []string{"-h", "box"},
			func(o engine.CreateOptions) any { return o.Config.Hostname }, "box"},
		{"stop signal and timeout", []string{"--stop-signal", "SIGUSR1", "--stop-timeout", "10"},
			func(o engine.CreateOptions) any { return []any{o.Config.StopSignal, o.Config.StopTimeout} },
			[]any{"SIGUSR1", &ten}},
		{"restart on-failure", []string{"--restart", "on-failure:3"},
			func(o engine.CreateOptions) any { return o.HostConfig.RestartPolicy },
			container.RestartPolicy{Name: container.RestartPolicyOnFailure, MaximumRetryCount: 3}},
		{"restart default", nil,
			func(o engine.CreateOptions) any { return o.HostConfig.RestartPolicy },
			container.RestartPolicy{Name: container.RestartPolicyDisabled}},
		{"log opts", []string{"--log-opt", "max-size=10m", "--log-opt", "max-file=3"},
			func(o engine.CreateOptions) any { return o.HostConfig.LogConfig },
			container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "10m", "max-file": "3"}}},
		{"health", []string{"--health-cmd", "true", "--health-interval", "5s", "--health-retries", "2", "--health-start-period", "1s"},
			func(o engine.CreateOptions) any { return *o.Config.Healthcheck },
			container.HealthConfig{Test: []string{"CMD-SHELL", "true"}, Interval: 5 * time.Second, Retries: 2, StartPeriod: time.Second}},
		{"no-healthcheck", []string{"--no-healthcheck"},
			func(o engine.CreateOptions) any { return o.Config.Healthcheck.Test }, []string{"NONE"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parseCreate(t, append(tc.args, "busybox", "true")...)
			if err != nil {
				t.Fatal(err)
			}
			if got := tc.check(o); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %#v\nwant %#v", got, tc.want)
			}
		})
	}
}

func TestCreateFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"bad ulimit", []string{"--ulimit", "nofile"}, "--ulimit"},
		{"bad memory", []string{"-m", "lots"}, "--memory"},
		{"bad cpus", []string{"--cpus", "x"}, "--cpus"},
		{"cpus too precise", []string{"--cpus", "0.0000000001"}, "too precise"},
		{"bad device perms", []string{"--device", "/dev/null:/x:rwx"}, "invalid device"},
		{"relative device", []string{"--device", "null"}, "absolute"},
		{"bad restart", []string{"--restart", "sometimes"}, "invalid restart policy"},
		{"restart count on always", []string{"--restart", "always:3"}, "maximum retry count"},
		{"bad signal", []string{"--stop-signal", "SIGNOPE"}, "invalid signal"},
		{"bad log opt", []string{"--log-opt", "colour=red"}, "unknown log opt"},
		{"bad log driver", []string{"--log-driver", "syslog"}, "not supported"},
		{"health conflict", []string{"--no-healthcheck", "--health-cmd", "true"}, "conflicts"},
		{"mount without target", []string{"--mount", "type=bind,src=/x"}, "target is required"},
		{"mount bad key", []string{"--mount", "type=bind,src=/x,dst=/y,colour=red"}, "unexpected key"},
		{"mount mixed options", []string{"--mount", "type=bind,src=/x,dst=/y,volume-nocopy"}, "cannot mix"},
		{"bad userns", []string{"--userns", "1:2"}, "invalid --userns"},
		{"missing seccomp file", []string{"--security-opt", "seccomp=/nonexistent.json"}, "seccomp profile"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseCreate(t, append(tc.args, "busybox")...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
