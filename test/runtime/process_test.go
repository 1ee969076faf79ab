//go:build linux

package runtime_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/testutil"
)

func caps(s *specs.Spec, names ...string) {
	s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: names, Effective: names, Permitted: names}
}

func errno1() *uint { v := uint(1); return &v }

// configCase is one container run in the foreground whose output is checked.
type configCase struct {
	name   string
	mutate []func(*specs.Spec)
	script string
	// want is compared with stdout split into fields (so whitespace and
	// tabs in /proc files do not matter); nil skips the check.
	want       []string
	wantStderr string // substring of stderr, if set
	wantCode   int
	// failRun: the runtime itself must fail (not the workload); wantStderr
	// then checks the runtime's error.
	failRun bool
}

func (tc configCase) check(t *testing.T, res result) {
	t.Helper()
	if tc.failRun {
		if res.code == 0 {
			t.Fatalf("want the runtime to fail, got %v", res)
		}
	} else if res.code != tc.wantCode {
		t.Fatalf("want exit %d, got %v", tc.wantCode, res)
	}
	if tc.want != nil && strings.Join(strings.Fields(res.stdout), " ") != strings.Join(tc.want, " ") {
		t.Errorf("stdout = %q, want fields %q\n%v", res.stdout, tc.want, res)
	}
	if tc.wantStderr != "" && !strings.Contains(strings.ToLower(res.stderr), strings.ToLower(tc.wantStderr)) {
		t.Errorf("stderr does not contain %q\n%v", tc.wantStderr, res)
	}
}

func runConfigCases(t *testing.T, cases []configCase) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newRT(t)
			tc.check(t, r.runFG(append(tc.mutate, testutil.Shell(tc.script))...))
		})
	}
}

// TestProcessConfig checks the process and security settings of config.json
// from inside the container.
func TestProcessConfig(t *testing.T) {
	t.Parallel()
	const capStatus = `grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb)' /proc/self/status; touch /tmp/f; chown 1000 /tmp/f && echo chowned`
	runConfigCases(t, []configCase{
		{
			// KILL=5, NET_BIND_SERVICE=10, AUDIT_WRITE=29: 0x20000420.
			name:   "capabilities without CAP_CHOWN",
			mutate: []func(*specs.Spec){func(s *specs.Spec) { caps(s, "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_AUDIT_WRITE") }},
			script: capStatus,
			want: []string{"CapInh:", "0000000000000000", "CapPrm:", "0000000020000420", "CapEff:", "0000000020000420",
				"CapBnd:", "0000000020000420", "CapAmb:", "0000000000000000"},
			wantStderr: "Operation not permitted",
			wantCode:   1, // chown's status
		},
		{
			name:   "capabilities with CAP_CHOWN",
			mutate: []func(*specs.Spec){func(s *specs.Spec) { caps(s, "CAP_CHOWN", "CAP_KILL") }},
			script: capStatus,
			want: []string{"CapInh:", "0000000000000000", "CapPrm:", "0000000000000021", "CapEff:", "0000000000000021",
				"CapBnd:", "0000000000000021", "CapAmb:", "0000000000000000", "chowned"},
		},
		{
			name:   "no capabilities for a non-root user",
			mutate: []func(*specs.Spec){func(s *specs.Spec) { s.Process.User = specs.User{UID: 1000, GID: 1000} }},
			script: `grep -E '^Cap(Prm|Eff)' /proc/self/status`,
			want:   []string{"CapPrm:", "0000000000000000", "CapEff:", "0000000000000000"},
		},
		{
			name:   "noNewPrivileges true",
			mutate: []func(*specs.Spec){func(s *specs.Spec) { s.Process.NoNewPrivileges = true }},
			script: `grep NoNewPrivs /proc/self/status`,
			want:   []string{"NoNewPrivs:", "1"},
		},
		{
			name:   "noNewPrivileges false",
			mutate: []func(*specs.Spec){func(s *specs.Spec) { s.Process.NoNewPrivileges = false }},
			script: `grep NoNewPrivs /proc/self/status`,
			want:   []string{"NoNewPrivs:", "0"},
		},
		{
			name: "seccomp denies mkdir",
			mutate: []func(*specs.Spec){func(s *specs.Spec) {
				s.Linux.Seccomp = &specs.LinuxSeccomp{
					DefaultAction: specs.ActAllow,
					Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
					Syscalls: []specs.LinuxSyscall{{
						Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno, ErrnoRet: errno1(),
					}},
				}
			}},
			script:     `mkdir /tmp/x; echo rc=$?; grep Seccomp: /proc/self/status; [ -e /tmp/x ] && echo exists; touch /tmp/y && echo touched`,
			want:       []string{"rc=1", "Seccomp:", "2", "touched"},
			wantStderr: "Operation not permitted",
		},
		{
			// chmod with all of 0777 set is denied, 0755 is allowed:
			// (mode & 0777) == 0777, on every chmod syscall.
			name: "seccomp argument filter",
			mutate: []func(*specs.Spec){func(s *specs.Spec) {
				arg := func(i uint) []specs.LinuxSeccompArg {
					return []specs.LinuxSeccompArg{{Index: i, Value: 0o777, ValueTwo: 0o777, Op: specs.OpMaskedEqual}}
				}
				s.Linux.Seccomp = &specs.LinuxSeccomp{
					DefaultAction: specs.ActAllow,
					Architectures: []specs.Arch{specs.ArchX86_64},
					Syscalls: []specs.LinuxSyscall{
						{Names: []string{"chmod"}, Action: specs.ActErrno, ErrnoRet: errno1(), Args: arg(1)},
						{Names: []string{"fchmodat", "fchmodat2"}, Action: specs.ActErrno, ErrnoRet: errno1(), Args: arg(2)},
						{Names: []string{"fchmod"}, Action: specs.ActErrno, ErrnoRet: errno1(), Args: arg(1)},
					},
				}
			}},
			script:     `touch /tmp/f; chmod 755 /tmp/f && echo ok755; chmod 777 /tmp/f || echo denied777; stat -c %a /tmp/f`,
			want:       []string{"ok755", "denied777", "755"},
			wantStderr: "Operation not permitted",
		},
		{
			name: "rlimits",
			mutate: []func(*specs.Spec){func(s *specs.Spec) {
				s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 123, Hard: 456}, {Type: "RLIMIT_CORE", Soft: 0, Hard: 0}}
			}},
			script: `ulimit -n; ulimit -Hn; ulimit -c`,
			want:   []string{"123", "456", "0"},
		},
		{
			// Raising a hard limit needs CAP_SYS_RESOURCE, which root on
			// this host lacks (its hard nofile is 20000).
			name: "rlimit above the hard limit is a clear EPERM",
			mutate: []func(*specs.Spec){func(s *specs.Spec) {
				s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1 << 20, Hard: 1 << 20}}
			}},
			script:     `echo should-not-run`,
			failRun:    true,
			want:       []string{},
			wantStderr: "operation not permitted",
		},
		{
			name:   "oomScoreAdj",
			mutate: []func(*specs.Spec){func(s *specs.Spec) { v := 500; s.Process.OOMScoreAdj = &v }},
			script: `cat /proc/self/oom_score_adj`,
			want:   []string{"500"},
		},
		{
			name: "user uid gid additionalGids umask",
			mutate: []func(*specs.Spec){func(s *specs.Spec) {
				um := uint32(0o077)
				s.Process.User = specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{10, 20}, Umask: &um}
			}},
			script: `id -u; id -g; grep Groups: /proc/self/status; umask; touch /tmp/u; stat -c '%a %u %g' /tmp/u`,
			want:   []string{"1000", "1000", "Groups:", "10", "20", "0077", "600", "1000", "1000"},
		},
		{
			name:   "cwd",
			mutate: []func(*specs.Spec){func(s *specs.Spec) { s.Process.Cwd = "/home/user" }},
			script: `pwd`,
			want:   []string{"/home/user"},
		},
		{
			name:   "cwd created when missing",
			mutate: []func(*specs.Spec){func(s *specs.Spec) { s.Process.Cwd = "/does/not/exist" }},
			script: `pwd`,
			want:   []string{"/does/not/exist"},
		},
		{
			name: "env",
			mutate: []func(*specs.Spec){func(s *specs.Spec) {
				s.Process.Env = []string{"PATH=/bin", "FOO=bar baz", "EMPTY="}
			}},
			script: `echo "[$FOO]"; echo "[$EMPTY]"; env | grep -E '^(PATH|FOO|EMPTY)=' | sort`,
			want:   []string{"[bar", "baz]", "[]", "EMPTY=", "FOO=bar", "baz", "PATH=/bin"},
		},
		{
			// runc (and crun) add HOME from the user's /etc/passwd
			// entry when process.env lacks it; shells and tools
			// rely on it.
			name: "env HOME from /etc/passwd",
			mutate: []func(*specs.Spec){func(s *specs.Spec) {
				s.Process.Env = []string{"PATH=/bin"}
				s.Process.User = specs.User{UID: 1000, GID: 1000}
			}},
			script: `echo "HOME=$HOME"`,
			want:   []string{"HOME=/home/user"},
		},
		{
			name:   "sysctl in the network namespace",
			mutate: []func(*specs.Spec){func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"} }},
			script: `cat /proc/sys/net/ipv4/ip_forward`,
			want:   []string{"1"},
		},
		{
			name:       "readonly rootfs",
			mutate:     []func(*specs.Spec){func(s *specs.Spec) { s.Root.Readonly = true }},
			script:     `touch /x || echo denied; echo ok > /dev/shm/w && cat /dev/shm/w`,
			want:       []string{"denied", "ok"},
			wantStderr: "Read-only file system",
		},
		{
			// /proc/kcore is in the default list but this kernel has
			// none; /proc/keys and /proc/timer_list exist on the host.
			name:   "maskedPaths",
			script: `for f in /proc/keys /proc/timer_list; do wc -c < $f; stat -c '%F %t %T' $f; done`,
			want:   []string{"0", "character", "special", "file", "1", "3", "0", "character", "special", "file", "1", "3"},
		},
		{
			name:   "maskedPaths directory",
			mutate: []func(*specs.Spec){func(s *specs.Spec) { s.Linux.MaskedPaths = append(s.Linux.MaskedPaths, "/proc/driver") }},
			script: `ls -A /proc/driver | wc -l`,
			want:   []string{"0"},
		},
		{
			name: "readonlyPaths",
			mutate: []func(*specs.Spec){func(s *specs.Spec) {
				// With CAP_SYS_ADMIN the write would be allowed but for
				// the read-only mount.
				caps(s, "CAP_SYS_ADMIN", "CAP_KILL")
			}},
			script:     `awk '$5 == "/proc/sys" {print $6}' /proc/self/mountinfo | cut -c1-3; echo e2e > /proc/sys/kernel/domainname || echo denied`,
			want:       []string{"ro,", "denied"},
			wantStderr: "Read-only file system",
		},
	})
	if got := readFile(t, "/proc/sys/net/ipv4/ip_forward"); got != "0" {
		t.Logf("host ip_forward is %s (the sysctl case must not change it; was it 1 before?)", got)
	}
}

// TestMounts checks mounts from config.json from inside the container.
func TestMounts(t *testing.T) {
	t.Parallel()
	testutil.RequiresRoot(t)
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "data"), []byte("hostdata\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A submount on the host: rbind carries it into the container, bind
	// does not.
	sub := filepath.Join(host, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", sub, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(sub, unix.MNT_DETACH) })
	if err := os.WriteFile(filepath.Join(sub, "marker"), []byte("submount\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mount := func(m specs.Mount) func(*specs.Spec) {
		return func(s *specs.Spec) { s.Mounts = append(s.Mounts, m) }
	}
	runConfigCases(t, []configCase{
		{
			name:   "tmpfs with options",
			mutate: []func(*specs.Spec){mount(specs.Mount{Destination: "/mnt/t", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "noexec", "size=1m", "mode=700"}})},
			script: `stat -c %a /mnt/t; awk '$5 == "/mnt/t" {print $6; print $NF}' /proc/self/mountinfo | tr ',' '\n' | grep -E '^(rw|nosuid|nodev|noexec|size=.*)$' | sort -u`,
			want:   []string{"700", "nodev", "noexec", "nosuid", "rw", "size=1024k"},
		},
		{
			name:       "bind read-only",
			mutate:     []func(*specs.Spec){mount(specs.Mount{Destination: "/mnt/ro", Type: "bind", Source: host, Options: []string{"bind", "ro"}})},
			script:     `cat /mnt/ro/data; touch /mnt/ro/new || echo denied; ls /mnt/ro/sub | wc -l`,
			want:       []string{"hostdata", "denied", "0"},
			wantStderr: "Read-only file system",
		},
		{
			name:   "rbind carries submounts",
			mutate: []func(*specs.Spec){mount(specs.Mount{Destination: "/mnt/r", Type: "bind", Source: host, Options: []string{"rbind", "rw"}})},
			script: `cat /mnt/r/data /mnt/r/sub/marker`,
			want:   []string{"hostdata", "submount"},
		},
		{
			name:   "bind file",
			mutate: []func(*specs.Spec){mount(specs.Mount{Destination: "/etc/e2e-data", Type: "bind", Source: filepath.Join(host, "data"), Options: []string{"bind", "ro"}})},
			script: `cat /etc/e2e-data`,
			want:   []string{"hostdata"},
		},
		{
			name: "devices",
			mutate: []func(*specs.Spec){func(s *specs.Spec) {
				fm := os.FileMode(0o620)
				zero := uint32(0)
				s.Linux.Devices = append(s.Linux.Devices,
					specs.LinuxDevice{Path: "/dev/e2e-null", Type: "c", Major: 1, Minor: 3, FileMode: &fm, UID: &zero, GID: &zero},
					specs.LinuxDevice{Path: "/dev/e2e-loop", Type: "b", Major: 7, Minor: 0, FileMode: &fm, UID: &zero, GID: &zero},
				)
				s.Linux.Resources.Devices = append(s.Linux.Resources.Devices, specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "rwm"})
			}},
			script: `stat -c '%F/%t/%T/%a' /dev/e2e-null /dev/e2e-loop; echo x > /dev/e2e-null && echo wrote; for d in null zero full random urandom tty; do [ -c /dev/$d ] || echo missing $d; done`,
			want:   []string{"character", "special", "file/1/3/620", "block", "special", "file/7/0/620", "wrote"},
		},
	})
	if _, err := os.Stat(filepath.Join(host, "new")); err == nil {
		t.Error("a write through the read-only bind mount reached the host")
	}
}
