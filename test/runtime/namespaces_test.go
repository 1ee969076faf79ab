//go:build linux

package runtime_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/testutil"
)

// nsLinks prints the container's namespace links, one per line, after the
// check's own output, so each case also proves the namespace is new.
const nsLinks = `; echo; for n in pid net ipc uts mnt cgroup user time; do echo "$n=$(readlink /proc/self/ns/$n)"; done`

// TestNamespaces checks each namespace type from inside a container: the
// namespace is not the host's, and it behaves as configured.
func TestNamespaces(t *testing.T) {
	t.Parallel()
	hostNS := func(t *testing.T, n string) string { return readlink(t, "/proc/self/ns/"+n) }
	cases := []struct {
		name   string
		ns     string // the namespace that must differ from the host's
		mutate []func(*specs.Spec)
		script string
		check  func(t *testing.T, out string)
	}{
		{
			name: "pid", ns: "pid",
			script: `echo $$; ls /proc | grep -c '^[0-9]'`,
			check: func(t *testing.T, out string) {
				// sh is pid 1; it, ls and grep (and the $() subshell)
				// are all the processes there are.
				f := strings.Fields(out)
				if f[0] != "1" {
					t.Errorf("init pid = %s, want 1", f[0])
				}
				if n, _ := strconv.Atoi(f[1]); n > 5 {
					t.Errorf("container sees %d processes; host pids leak into the pid namespace", n)
				}
			},
		},
		{
			name: "net", ns: "net",
			script: `tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '`,
			check: func(t *testing.T, out string) {
				if out != "lo" {
					t.Errorf("network devices = %q, want only lo", out)
				}
			},
		},
		{
			name: "ipc", ns: "ipc",
			// A fresh ipc namespace has no SysV objects (the header
			// lines are all ipcs prints) and its own message queue fs.
			script: `cat /proc/sysvipc/shm | wc -l`,
			check: func(t *testing.T, out string) {
				if out != "1" {
					t.Errorf("/proc/sysvipc/shm has %s lines, want only the header", out)
				}
			},
		},
		{
			name: "uts", ns: "uts",
			mutate: []func(*specs.Spec){func(s *specs.Spec) { s.Hostname = "e2e-uts-host" }},
			script: `hostname; cat /proc/sys/kernel/hostname`,
			check: func(t *testing.T, out string) {
				if out != "e2e-uts-host\ne2e-uts-host" {
					t.Errorf("hostname = %q, want e2e-uts-host twice", out)
				}
				if h, _ := os.Hostname(); h == "e2e-uts-host" {
					t.Error("the host's hostname was changed")
				}
			},
		},
		{
			name: "mount", ns: "mnt",
			script: `awk '$5 == "/" {print $4}' /proc/self/mountinfo | head -1; grep -c . /proc/self/mountinfo`,
			check: func(t *testing.T, out string) {
				f := strings.Fields(out)
				if n, _ := strconv.Atoi(f[1]); n > 40 {
					t.Errorf("container has %d mounts; host mounts leak into its mount namespace", n)
				}
			},
		},
		{
			name: "cgroup", ns: "cgroup",
			script: `cat /proc/self/cgroup`,
			check: func(t *testing.T, out string) {
				for _, l := range strings.Split(out, "\n") {
					if !strings.HasSuffix(l, ":/") {
						t.Errorf("/proc/self/cgroup line %q: want the namespace root \"/\"", l)
					}
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newRT(t)
			res := r.runFG(append(tc.mutate, testutil.Shell(tc.script+nsLinks))...)
			if res.code != 0 {
				t.Fatalf("%v", res)
			}
			out, links, _ := strings.Cut(res.stdout, "\n\n")
			if !strings.Contains(links, tc.ns+"="+"") || strings.Contains(links, tc.ns+"="+hostNS(t, tc.ns)+"\n") {
				t.Errorf("%s namespace is the host's:\n%s", tc.ns, links)
			}
			tc.check(t, strings.TrimSpace(out))
		})
	}
}

func chownR(t *testing.T, dir string, uid, gid int) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestUserNamespace maps container root to host uid/gid 100000.
func TestUserNamespace(t *testing.T) {
	t.Parallel()
	r := newRT(t)
	id := r.newID()
	hostFile := filepath.Join(t.TempDir(), "host-owned")
	if err := os.WriteFile(hostFile, []byte("host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b := r.bundle(id, func(s *specs.Spec) {
		testutil.SetNamespace(s, specs.UserNamespace, "")
		s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
		s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/hostfile", Type: "bind", Source: hostFile, Options: []string{"bind"}})
		// DAC_OVERRIDE would let root write anything whose owner is
		// mapped in its namespace; the host file's owner is not.
		for _, set := range []*[]string{&s.Process.Capabilities.Bounding, &s.Process.Capabilities.Effective, &s.Process.Capabilities.Permitted} {
			*set = append(*set, "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_CHOWN")
		}
	}, testutil.Shell(`id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map; cat /hostfile; stat -c %u /hostfile;
		echo x >> /hostfile && echo WROTE; echo ok > /tmp/mine && stat -c %u /tmp/mine`))
	chownR(t, b.Rootfs, 100000, 100000)
	res := r.run("run", "--bundle", b.Dir, id)
	lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
	t.Logf("%v", res)
	if len(lines) < 7 {
		t.Fatalf("short output: %v", res)
	}
	if lines[0] != "0" || lines[1] != "0" {
		t.Errorf("id -u/-g inside = %s/%s, want 0/0", lines[0], lines[1])
	}
	for i, l := range lines[2:4] {
		if f := strings.Fields(l); len(f) != 3 || f[0] != "0" || f[1] != "100000" || f[2] != "65536" {
			t.Errorf("%s = %q, want 0 100000 65536", []string{"uid_map", "gid_map"}[i], l)
		}
	}
	if lines[4] != "host" || lines[5] != "65534" {
		t.Errorf("host file inside: content %q owner %q, want host/65534 (overflow uid)", lines[4], lines[5])
	}
	if strings.Contains(res.stdout, "WROTE") || readFile(t, hostFile) != "host" {
		t.Errorf("container root wrote to a host-owned file")
	}
	if !strings.Contains(res.stderr, "ermission denied") {
		t.Errorf("write to host file: want Permission denied on stderr, got %q", res.stderr)
	}
	if lines[len(lines)-1] != "0" {
		t.Errorf("file created by container root owned by %q inside, want 0", lines[len(lines)-1])
	}
	fi, err := os.Stat(filepath.Join(b.Rootfs, "tmp", "mine"))
	if err != nil {
		t.Fatal(err)
	}
	if uid := fileUID(fi); uid != 100000 {
		t.Errorf("file created by container root owned by host uid %d, want 100000", uid)
	}
}

// TestTimeNamespace: boottime/monotonic offsets shift /proc/uptime.
func TestTimeNamespace(t *testing.T) {
	t.Parallel()
	r := newRT(t)
	if _, err := os.Stat("/proc/self/ns/time"); err != nil {
		t.Skip("kernel has no time namespaces (no /proc/self/ns/time)")
	}
	const offset = 10 * 86400
	host := func() float64 {
		f, _ := strconv.ParseFloat(strings.Fields(readFile(t, "/proc/uptime"))[0], 64)
		return f
	}
	before := host()
	res := r.runFG(func(s *specs.Spec) {
		testutil.SetNamespace(s, specs.TimeNamespace, "")
		s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{
			"boottime":  {Secs: offset},
			"monotonic": {Secs: offset},
		}
	}, testutil.Shell(`cut -d' ' -f1 /proc/uptime; readlink /proc/self/ns/time`))
	after := host()
	if res.code != 0 {
		t.Fatalf("%v", res)
	}
	f := strings.Fields(res.stdout)
	inside, _ := strconv.ParseFloat(f[0], 64)
	if inside < before+offset-1 || inside > after+offset+1 {
		t.Errorf("uptime inside = %.2f, want host uptime (%.2f..%.2f) + %d", inside, before, after, offset)
	}
	if f[1] == readlink(t, "/proc/self/ns/time") {
		t.Errorf("time namespace is the host's (%s)", f[1])
	}
}

// TestJoinNamespaces: container B joins A's net, ipc and uts namespaces by
// path and sees A's hostname.
func TestJoinNamespaces(t *testing.T) {
	t.Parallel()
	r := newRT(t)
	idA, _ := r.startDetached(func(s *specs.Spec) { s.Hostname = "host-a" })
	pidA := strconv.Itoa(r.state(idA).Pid)
	res := r.runFG(func(s *specs.Spec) {
		s.Hostname = "" // the uts namespace is A's; B must not rename it
		for _, n := range []specs.LinuxNamespaceType{specs.NetworkNamespace, specs.IPCNamespace, specs.UTSNamespace} {
			testutil.SetNamespace(s, n, "/proc/"+pidA+"/ns/"+nsFile(n))
		}
	}, testutil.Shell(`hostname; for n in net ipc uts pid mnt; do readlink /proc/self/ns/$n; done`))
	if res.code != 0 {
		t.Fatalf("%v", res)
	}
	got := strings.Fields(res.stdout)
	if len(got) != 6 || got[0] != "host-a" {
		t.Fatalf("want A's hostname host-a and 5 namespace links, got %v", res)
	}
	for i, n := range []string{"net", "ipc", "uts"} {
		if want := readlink(t, "/proc/"+pidA+"/ns/"+n); got[1+i] != want {
			t.Errorf("B's %s namespace = %s, want A's %s", n, got[1+i], want)
		}
	}
	for i, n := range []string{"pid", "mnt"} {
		if a := readlink(t, "/proc/"+pidA+"/ns/"+n); got[4+i] == a {
			t.Errorf("B shares A's %s namespace (%s) but was configured with a new one", n, a)
		}
	}
}

func nsFile(t specs.LinuxNamespaceType) string {
	switch t {
	case specs.NetworkNamespace:
		return "net"
	case specs.MountNamespace:
		return "mnt"
	}
	return string(t)
}
