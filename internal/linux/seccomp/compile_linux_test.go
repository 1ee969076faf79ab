package seccomp

import (
	"encoding/binary"
	"errors"
	"math/rand"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

const (
	retAllow       = unix.SECCOMP_RET_ALLOW
	retKillProcess = unix.SECCOMP_RET_KILL_PROCESS
	retKillThread  = unix.SECCOMP_RET_KILL_THREAD
	retEPERM       = unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
	retENOSYS      = unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)
)

func errnoRet(e uint32) uint32 { return unix.SECCOMP_RET_ERRNO | e }

func uptr(v uint) *uint { return &v }

// vm runs a compiled program in x/net/bpf's interpreter.
type vm struct{ m *bpf.VM }

func newVM(t testing.TB, prog []unix.SockFilter) vm {
	t.Helper()
	raw := make([]bpf.RawInstruction, len(prog))
	for i, ins := range prog {
		raw[i] = bpf.RawInstruction{Op: ins.Code, Jt: ins.Jt, Jf: ins.Jf, K: ins.K}
	}
	insns, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatalf("program does not disassemble")
	}
	m, err := bpf.NewVM(insns)
	if err != nil {
		t.Fatalf("bpf.NewVM: %v", err)
	}
	return vm{m}
}

// run evaluates the program on a seccomp_data. The kernel loads words in
// host order; x/net/bpf loads them big-endian, so each 32-bit word is
// encoded big-endian here, low word of each argument first as on x86.
func (v vm) run(t testing.TB, arch, nr uint32, args ...uint64) uint32 {
	t.Helper()
	in := make([]byte, 64)
	binary.BigEndian.PutUint32(in[0:], nr)
	binary.BigEndian.PutUint32(in[4:], arch)
	for i, a := range args {
		binary.BigEndian.PutUint32(in[16+8*i:], uint32(a))
		binary.BigEndian.PutUint32(in[16+8*i+4:], uint32(a>>32))
	}
	out, err := v.m.Run(in)
	if err != nil {
		t.Fatalf("bpf run: %v", err)
	}
	return uint32(out)
}

func mustCompile(t testing.TB, s *specs.LinuxSeccomp) vm {
	t.Helper()
	prog, err := compile(s, "amd64")
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return newVM(t, prog)
}

func nr(t testing.TB, table syscallTable, name string) uint32 {
	t.Helper()
	n, ok := table.lookup(name)
	if !ok {
		t.Fatalf("no syscall %q", name)
	}
	return n
}

const (
	x86_64 = unix.AUDIT_ARCH_X86_64
	i386   = unix.AUDIT_ARCH_I386
)

func TestActions(t *testing.T) {
	s := &specs.LinuxSeccomp{
		DefaultAction:   specs.ActErrno,
		DefaultErrnoRet: uptr(uint(unix.EACCES)),
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"getcwd", "uname", "no_such_syscall"}, Action: specs.ActAllow},
			{Names: []string{"mkdirat"}, Action: specs.ActErrno, ErrnoRet: uptr(1234)},
			{Names: []string{"rmdir"}, Action: specs.ActErrno},
			{Names: []string{"kill"}, Action: specs.ActKill},
			{Names: []string{"tkill"}, Action: specs.ActKillThread},
			{Names: []string{"tgkill"}, Action: specs.ActKillProcess},
			{Names: []string{"ptrace"}, Action: specs.ActTrap},
			{Names: []string{"chroot"}, Action: specs.ActTrace, ErrnoRet: uptr(7)},
			{Names: []string{"pivot_root"}, Action: specs.ActTrace},
			{Names: []string{"mount"}, Action: specs.ActLog},
			// Same as the default: dropped, like runc does.
			{Names: []string{"umount2"}, Action: specs.ActErrno, ErrnoRet: uptr(uint(unix.EACCES))},
			{Names: []string{"lsm_list_modules"}, Action: specs.ActAllow},
		},
	}
	v := mustCompile(t, s)
	tb := syscalls_x86_64
	cases := []struct {
		name string
		nr   uint32
		want uint32
	}{
		{"allowed", nr(t, tb, "getcwd"), retAllow},
		{"allowed second name", nr(t, tb, "uname"), retAllow},
		{"not listed gets default errno", nr(t, tb, "mkdir"), errnoRet(uint32(unix.EACCES))},
		{"nr 0 gets default", 0, errnoRet(uint32(unix.EACCES))},
		{"errnoRet", nr(t, tb, "mkdirat"), errnoRet(1234)},
		{"errno defaults to EPERM", nr(t, tb, "rmdir"), retEPERM},
		{"kill is kill thread", nr(t, tb, "kill"), retKillThread},
		{"kill thread", nr(t, tb, "tkill"), retKillThread},
		{"kill process", nr(t, tb, "tgkill"), retKillProcess},
		{"trap", nr(t, tb, "ptrace"), unix.SECCOMP_RET_TRAP},
		{"trace with data", nr(t, tb, "chroot"), unix.SECCOMP_RET_TRACE | 7},
		{"trace defaults to EPERM", nr(t, tb, "pivot_root"), unix.SECCOMP_RET_TRACE | uint32(unix.EPERM)},
		{"log", nr(t, tb, "mount"), unix.SECCOMP_RET_LOG},
		{"rule equal to default", nr(t, tb, "umount2"), errnoRet(uint32(unix.EACCES))},
		{"highest named", nr(t, tb, "lsm_list_modules"), retAllow},
		{"above highest named is ENOSYS", nr(t, tb, "lsm_list_modules") + 1, retENOSYS},
		{"far above is ENOSYS", x32SyscallBit - 1, retENOSYS},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := v.run(t, x86_64, tc.nr); got != tc.want {
				t.Errorf("nr %d: got %#x, want %#x", tc.nr, got, tc.want)
			}
		})
	}
}

func TestNoENOSYSStubWhenDefaultAllows(t *testing.T) {
	for _, act := range []specs.LinuxSeccompAction{specs.ActAllow, specs.ActLog} {
		v := mustCompile(t, &specs.LinuxSeccomp{
			DefaultAction: act,
			Syscalls:      []specs.LinuxSyscall{{Names: []string{"getcwd"}, Action: specs.ActErrno}},
		})
		want, _ := actionRet(act, nil)
		if got := v.run(t, x86_64, 400); got != want {
			t.Errorf("%s: nr 400: got %#x, want %#x", act, got, want)
		}
		if got := v.run(t, x86_64, nr(t, syscalls_x86_64, "getcwd")); got != retEPERM {
			t.Errorf("%s: getcwd: got %#x, want EPERM", act, got)
		}
	}
}

func TestArchitectures(t *testing.T) {
	profile := func(arches ...specs.Arch) *specs.LinuxSeccomp {
		return &specs.LinuxSeccomp{
			DefaultAction: specs.ActErrno,
			Architectures: arches,
			Syscalls: []specs.LinuxSyscall{
				{Names: []string{"getcwd", "ioctl", "socketcall", "arch_prctl", "futex_waitv"}, Action: specs.ActAllow},
			},
		}
	}
	x32 := func(n uint32) uint32 { return n | x32SyscallBit }
	cases := []struct {
		name   string
		arches []specs.Arch
		arch   uint32
		nr     uint32
		want   uint32
	}{
		{"native without list", nil, x86_64, 79, retAllow},
		{"i386 not listed is bad arch", nil, i386, 183, retKillProcess},
		{"aarch64 is bad arch", []specs.Arch{specs.ArchX86, specs.ArchX32}, unix.AUDIT_ARCH_AARCH64, 17, retKillProcess},
		{"x32 not listed is bad arch", []specs.Arch{specs.ArchX86_64, specs.ArchX86}, x86_64, x32(79), retKillProcess},
		{"i386 getcwd", []specs.Arch{specs.ArchX86}, i386, 183, retAllow},
		{"i386 socketcall", []specs.Arch{specs.ArchX86}, i386, 102, retAllow},
		{"i386 nr 79 is settimeofday", []specs.Arch{specs.ArchX86}, i386, 79, retEPERM},
		{"x86_64 nr 102 is getuid", []specs.Arch{specs.ArchX86}, x86_64, 102, retEPERM},
		{"x32 getcwd", []specs.Arch{specs.ArchX32}, x86_64, x32(79), retAllow},
		{"x32 ioctl is 514", []specs.Arch{specs.ArchX32}, x86_64, x32(514), retAllow},
		{"x32 through the 64-bit ioctl number", []specs.Arch{specs.ArchX32}, x86_64, x32(16), retEPERM},
		{"x86_64 ioctl", []specs.Arch{specs.ArchX32}, x86_64, 16, retAllow},
		{"x86_64 must not see x32 numbers", []specs.Arch{specs.ArchX32}, x86_64, 514, retENOSYS},
		{"x86_64 below highest named", []specs.Arch{specs.ArchX32}, x86_64, 300, retEPERM},
		{"x32 arch_prctl", []specs.Arch{specs.ArchX32}, x86_64, x32(158), retAllow},
		{"x32 above highest named", []specs.Arch{specs.ArchX32}, x86_64, x32(515), retENOSYS},
		{"x32 number 0xffffffff", []specs.Arch{specs.ArchX32}, x86_64, 0xffffffff, retENOSYS},
		{"foreign arches are ignored", []specs.Arch{specs.ArchS390X, specs.ArchMIPS}, x86_64, 79, retAllow},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := mustCompile(t, profile(tc.arches...))
			if got := v.run(t, tc.arch, tc.nr); got != tc.want {
				t.Errorf("arch %#x nr %#x: got %#x, want %#x", tc.arch, tc.nr, got, tc.want)
			}
		})
	}
}

func TestArm64Family(t *testing.T) {
	prog, err := compile(&specs.LinuxSeccomp{
		DefaultAction: specs.ActErrno,
		Architectures: []specs.Arch{specs.ArchARM},
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"getcwd", "set_tls"}, Action: specs.ActAllow}},
	}, "arm64")
	if err != nil {
		t.Fatal(err)
	}
	v := newVM(t, prog)
	for _, tc := range []struct {
		arch, nr, want uint32
	}{
		{unix.AUDIT_ARCH_AARCH64, 17, retAllow},
		{unix.AUDIT_ARCH_ARM, 183, retAllow},
		{unix.AUDIT_ARCH_ARM, 0x0f0005, retAllow},
		{unix.AUDIT_ARCH_ARM, 17, retEPERM},
		{x86_64, 79, retKillProcess},
	} {
		if got := v.run(t, tc.arch, tc.nr); got != tc.want {
			t.Errorf("arch %#x nr %#x: got %#x, want %#x", tc.arch, tc.nr, got, tc.want)
		}
	}
}

// holds is the reference semantics of one condition: unsigned 64-bit.
func holds(a specs.LinuxSeccompArg, v uint64) bool {
	switch a.Op {
	case specs.OpEqualTo:
		return v == a.Value
	case specs.OpNotEqual:
		return v != a.Value
	case specs.OpLessThan:
		return v < a.Value
	case specs.OpLessEqual:
		return v <= a.Value
	case specs.OpGreaterThan:
		return v > a.Value
	case specs.OpGreaterEqual:
		return v >= a.Value
	case specs.OpMaskedEqual:
		return v&a.Value == a.ValueTwo
	}
	panic(a.Op)
}

var allOps = []specs.LinuxSeccompOperator{
	specs.OpEqualTo, specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual,
	specs.OpGreaterThan, specs.OpGreaterEqual, specs.OpMaskedEqual,
}

func TestArgOps(t *testing.T) {
	const hi = 0x1_0000_0000
	values := []uint64{0, 1, 5, 0xffffffff, hi, hi + 5, hi * 3, 0x8000_0000_0000_0000, ^uint64(0), ^uint64(0) - 1}
	cases := []struct {
		name string
		arg  specs.LinuxSeccompArg
	}{
		{"eq small", specs.LinuxSeccompArg{Op: specs.OpEqualTo, Value: 5}},
		{"eq hi word", specs.LinuxSeccompArg{Op: specs.OpEqualTo, Value: hi + 5}},
		{"ne small", specs.LinuxSeccompArg{Op: specs.OpNotEqual, Value: 5}},
		{"ne hi word", specs.LinuxSeccompArg{Op: specs.OpNotEqual, Value: hi + 5}},
		{"lt small", specs.LinuxSeccompArg{Op: specs.OpLessThan, Value: 5}},
		{"lt hi word", specs.LinuxSeccompArg{Op: specs.OpLessThan, Value: hi + 5}},
		{"lt 2^63 (unsigned)", specs.LinuxSeccompArg{Op: specs.OpLessThan, Value: 0x8000_0000_0000_0000}},
		{"le small", specs.LinuxSeccompArg{Op: specs.OpLessEqual, Value: 5}},
		{"le hi word", specs.LinuxSeccompArg{Op: specs.OpLessEqual, Value: hi + 5}},
		{"le max", specs.LinuxSeccompArg{Op: specs.OpLessEqual, Value: ^uint64(0)}},
		{"gt small", specs.LinuxSeccompArg{Op: specs.OpGreaterThan, Value: 5}},
		{"gt hi word", specs.LinuxSeccompArg{Op: specs.OpGreaterThan, Value: hi + 5}},
		{"gt 0xffffffff", specs.LinuxSeccompArg{Op: specs.OpGreaterThan, Value: 0xffffffff}},
		{"ge small", specs.LinuxSeccompArg{Op: specs.OpGreaterEqual, Value: 5}},
		{"ge hi word", specs.LinuxSeccompArg{Op: specs.OpGreaterEqual, Value: hi + 5}},
		{"ge 0", specs.LinuxSeccompArg{Op: specs.OpGreaterEqual, Value: 0}},
		{"masked eq low", specs.LinuxSeccompArg{Op: specs.OpMaskedEqual, Value: 0x7e020000, ValueTwo: 0}},
		{"masked eq hi", specs.LinuxSeccompArg{Op: specs.OpMaskedEqual, Value: 0xffff_0000_0000_000f, ValueTwo: 0x0001_0000_0000_0005}},
	}
	for _, tc := range cases {
		for idx := uint(0); idx < 6; idx++ {
			arg := tc.arg
			arg.Index = idx
			v := mustCompile(t, &specs.LinuxSeccomp{
				DefaultAction: specs.ActAllow,
				Syscalls:      []specs.LinuxSyscall{{Names: []string{"umask"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{arg}}},
			})
			for _, val := range values {
				args := make([]uint64, 6)
				for i := range args {
					args[i] = ^val // the other arguments must not matter
				}
				args[idx] = val
				want := uint32(retAllow)
				if holds(arg, val) {
					want = retEPERM
				}
				if got := v.run(t, x86_64, 95, args...); got != want {
					t.Errorf("%s: arg%d=%#x: got %#x, want %#x", tc.name, idx, val, got, want)
				}
			}
		}
	}
}

// TestRandomRules checks the compiled program against a direct evaluation
// of the profile for random multi-arg, multi-rule profiles.
func TestRandomRules(t *testing.T) {
	rnd := rand.New(rand.NewSource(1))
	interesting := []uint64{0, 1, 2, 0xffffffff, 0x1_0000_0000, 0x1_0000_0001, ^uint64(0)}
	pick := func() uint64 {
		if rnd.Intn(3) == 0 {
			return rnd.Uint64() >> uint(rnd.Intn(64))
		}
		return interesting[rnd.Intn(len(interesting))]
	}
	names := []string{"read", "write", "open", "close", "getcwd"}
	for iter := 0; iter < 300; iter++ {
		s := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow}
		for r := rnd.Intn(6); r >= 0; r-- {
			sc := specs.LinuxSyscall{Names: []string{names[rnd.Intn(len(names))]}, Action: specs.ActErrno, ErrnoRet: uptr(uint(r + 1))}
			for a := rnd.Intn(4); a > 0; a-- {
				sc.Args = append(sc.Args, specs.LinuxSeccompArg{Index: uint(rnd.Intn(3)), Op: allOps[rnd.Intn(len(allOps))], Value: pick(), ValueTwo: pick()})
			}
			s.Syscalls = append(s.Syscalls, sc)
		}
		v := mustCompile(t, s)
		for probe := 0; probe < 50; probe++ {
			name := names[rnd.Intn(len(names))]
			args := []uint64{pick(), pick(), pick()}
			want := model(s, name, args)
			if got := v.run(t, x86_64, nr(t, syscalls_x86_64, name), args...); got != want {
				t.Fatalf("profile %+v\n%s%#x: got %#x, want %#x", s.Syscalls, name, args, got, want)
			}
		}
	}
}

// model is the documented rule semantics, evaluated directly: argument
// rules in order, then the first argument-less rule, then the default.
func model(s *specs.LinuxSeccomp, name string, args []uint64) uint32 {
	def, _ := actionRet(s.DefaultAction, s.DefaultErrnoRet)
	var uncond *uint32
	for _, sc := range s.Syscalls {
		ret, _ := actionRet(sc.Action, sc.ErrnoRet)
		if ret == def || !contains(sc.Names, name) {
			continue
		}
		if len(sc.Args) == 0 {
			if uncond == nil {
				uncond = &ret
			}
			continue
		}
		ok := true
		for _, a := range sc.Args {
			ok = ok && holds(a, args[a.Index])
		}
		if ok {
			return ret
		}
	}
	if uncond != nil {
		return *uncond
	}
	return def
}

func contains(list []string, s string) bool {
	for _, l := range list {
		if l == s {
			return true
		}
	}
	return false
}

func TestRuleOrder(t *testing.T) {
	eq := func(i uint, v uint64) specs.LinuxSeccompArg {
		return specs.LinuxSeccompArg{Index: i, Op: specs.OpEqualTo, Value: v}
	}
	s := &specs.LinuxSeccomp{
		DefaultAction: specs.ActErrno,
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"personality"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{eq(0, 0)}},
			{Names: []string{"personality"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{eq(0, 8)}},
			{Names: []string{"personality"}, Action: specs.ActErrno, ErrnoRet: uptr(9), Args: []specs.LinuxSeccompArg{eq(0, 0xffffffff)}},
			{Names: []string{"setns"}, Action: specs.ActErrno, ErrnoRet: uptr(5), Args: []specs.LinuxSeccompArg{eq(0, 3), eq(1, 0x20000)}},
			{Names: []string{"setns"}, Action: specs.ActErrno, ErrnoRet: uptr(6), Args: []specs.LinuxSeccompArg{eq(0, 3)}},
			{Names: []string{"setns"}, Action: specs.ActAllow},
			{Names: []string{"setns"}, Action: specs.ActKill}, // later unconditional rule: ignored
		},
	}
	v := mustCompile(t, s)
	p, sn := nr(t, syscalls_x86_64, "personality"), nr(t, syscalls_x86_64, "setns")
	cases := []struct {
		name string
		nr   uint32
		args []uint64
		want uint32
	}{
		{"first rule", p, []uint64{0}, retAllow},
		{"second rule", p, []uint64{8}, retAllow},
		{"third rule", p, []uint64{0xffffffff}, errnoRet(9)},
		{"hi word differs", p, []uint64{0x1_0000_0008}, retEPERM},
		{"no rule", p, []uint64{1}, retEPERM},
		{"both args match", sn, []uint64{3, 0x20000}, errnoRet(5)},
		{"one arg of two", sn, []uint64{3, 0}, errnoRet(6)},
		{"other arg only", sn, []uint64{4, 0x20000}, retAllow},
		{"unconditional fallback", sn, []uint64{0, 0}, retAllow},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := v.run(t, x86_64, tc.nr, tc.args...); got != tc.want {
				t.Errorf("got %#x, want %#x", got, tc.want)
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	cases := []struct {
		name string
		s    *specs.LinuxSeccomp
		want string
		is   error
	}{
		{"nil", nil, "no configuration", nil},
		{"bad default", &specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_ALOW"}, `unknown seccomp action "SCMP_ACT_ALOW"`, nil},
		{"bad action", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: "SCMP_ACT_DENY"}}}, `unknown seccomp action "SCMP_ACT_DENY"`, nil},
		{"bad action on unknown name", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"nope"}, Action: "SCMP_ACT_DENY"}}}, "unknown seccomp action", nil},
		{"bad op", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Op: "SCMP_CMP_EQUAL"}}}}}, `unknown operator "SCMP_CMP_EQUAL"`, nil},
		{"arg index", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 6, Op: specs.OpEqualTo}}}}}, "argument index 6", nil},
		{"errnoRet with allow", &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow, ErrnoRet: uptr(1)}}}, "errnoRet is only valid", nil},
		{"defaultErrnoRet with kill", &specs.LinuxSeccomp{DefaultAction: specs.ActKill, DefaultErrnoRet: uptr(1)}, "defaultErrnoRet is only valid", nil},
		{"errno too big", &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: uptr(0x10000)}, "16 bits", nil},
		{"notify", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActNotify}}}, "SCMP_ACT_NOTIFY", ErrNotSupported},
		{"listener", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: "/run/x.sock"}, "listenerPath", ErrNotSupported},
		{"bad flag", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_LOUD"}}, "unknown seccomp flag", nil},
		{"bad arch", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{"SCMP_ARCH_Z80"}}, "unknown seccomp architecture", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := compile(tc.s, "amd64")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want error containing %q", err, tc.want)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("got %v, want errors.Is %v", err, tc.is)
			}
		})
	}
}

// dockerNames are names Docker's default profile allows that are recent
// enough to be missing from older tables; each must resolve on x86_64.
var dockerNewNames = []string{
	"clone3", "faccessat2", "epoll_pwait2", "landlock_add_rule", "landlock_create_ruleset",
	"landlock_restrict_self", "memfd_secret", "futex_waitv", "process_mrelease",
	"set_mempolicy_home_node", "cachestat", "fchmodat2", "map_shadow_stack", "futex_wake",
	"futex_wait", "futex_requeue", "statmount", "listmount", "lsm_get_self_attr",
	"lsm_set_self_attr", "lsm_list_modules", "mseal", "setxattrat", "getxattrat",
	"listxattrat", "removexattrat", "open_tree_attr", "quotactl_fd", "mount_setattr",
	"pidfd_getfd", "process_madvise", "openat2", "close_range", "io_pgetevents", "rseq",
}

func TestTablesHaveNewSyscalls(t *testing.T) {
	for _, n := range dockerNewNames {
		if _, ok := syscalls_x86_64.lookup(n); !ok {
			t.Errorf("x86_64 table lacks %s", n)
		}
		if _, ok := syscalls_x32.lookup(n); !ok {
			t.Errorf("x32 table lacks %s", n)
		}
	}
	for _, n := range []string{"socketcall", "_llseek", "_newselect", "chown32", "fcntl64", "ugetrlimit", "sigreturn", "waitpid", "clone3"} {
		if _, ok := syscalls_i386.lookup(n); !ok {
			t.Errorf("i386 table lacks %s", n)
		}
	}
	for _, tb := range []syscallTable{syscalls_x86_64, syscalls_i386, syscalls_x32, syscalls_aarch64, syscalls_arm} {
		for i := 1; i < len(tb); i++ {
			if tb[i-1].name >= tb[i].name {
				t.Fatalf("table not sorted at %q", tb[i].name)
			}
		}
	}
}

// dockerSizedProfile allows seven of every eight x86_64 syscalls (~340
// names, about as many as Docker's default profile, with ~50 holes, more
// fragmented than Docker's) and carries Docker's argument rules.
func dockerSizedProfile() (*specs.LinuxSeccomp, map[string]bool) {
	allowed := map[string]bool{}
	var names []string
	special := map[string]bool{"clone": true, "clone3": true, "socket": true, "personality": true}
	for i, e := range syscalls_x86_64 {
		if i%8 != 7 && !special[e.name] {
			names = append(names, e.name)
			allowed[e.name] = true
		}
	}
	s := &specs.LinuxSeccomp{
		DefaultAction:   specs.ActErrno,
		DefaultErrnoRet: uptr(1),
		Architectures:   []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
		Syscalls:        []specs.LinuxSyscall{{Names: names, Action: specs.ActAllow}},
	}
	for _, v := range []uint64{0, 8, 0x20000, 0x20008, 0xffffffff} {
		s.Syscalls = append(s.Syscalls, specs.LinuxSyscall{Names: []string{"personality"}, Action: specs.ActAllow,
			Args: []specs.LinuxSeccompArg{{Index: 0, Value: v, Op: specs.OpEqualTo}}})
	}
	s.Syscalls = append(s.Syscalls,
		specs.LinuxSyscall{Names: []string{"socket"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 40, Op: specs.OpNotEqual}}},
		specs.LinuxSyscall{Names: []string{"clone"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 0x7e020000, Op: specs.OpMaskedEqual}}},
		specs.LinuxSyscall{Names: []string{"clone3"}, Action: specs.ActErrno, ErrnoRet: uptr(38)},
	)
	return s, allowed
}

func TestDockerSizedProfile(t *testing.T) {
	s, allowed := dockerSizedProfile()
	prog, err := compile(s, "amd64")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d names, %d instructions", len(s.Syscalls[0].Names), len(prog))
	if len(prog) >= maxInsns {
		t.Fatalf("%d instructions, the kernel allows %d", len(prog), maxInsns)
	}
	v := newVM(t, prog)
	// Every x86_64 syscall number, against the allowlist.
	byNr := map[uint32]string{}
	var last uint32
	for _, e := range syscalls_x86_64 {
		byNr[e.nr] = e.name
		last = max(last, e.nr)
	}
	for n := uint32(0); n <= last+2; n++ {
		name := byNr[n]
		want := errnoRet(1)
		switch {
		case n > last:
			want = retENOSYS
		case allowed[name]:
			want = retAllow
		case name == "clone3":
			want = retENOSYS
		}
		if name == "clone" || name == "socket" || name == "personality" {
			continue
		}
		if got := v.run(t, x86_64, n); got != want {
			t.Errorf("nr %d (%s): got %#x, want %#x", n, name, got, want)
		}
	}
	clone := nr(t, syscalls_x86_64, "clone")
	if got := v.run(t, x86_64, clone, 0x11); got != retAllow {
		t.Errorf("clone(SIGCHLD|...): got %#x", got)
	}
	if got := v.run(t, x86_64, clone, unix.CLONE_NEWNS); got != errnoRet(1) {
		t.Errorf("clone(CLONE_NEWNS): got %#x", got)
	}
	if got := v.run(t, x86_64, nr(t, syscalls_x86_64, "socket"), unix.AF_VSOCK); got != errnoRet(1) {
		t.Errorf("socket(AF_VSOCK): got %#x", got)
	}
	if got := v.run(t, i386, nr(t, syscalls_i386, "getcwd")); got != retAllow && got != errnoRet(1) {
		t.Errorf("i386 getcwd: got %#x", got)
	}
}

// TestWorstCaseFragmentation alternates allow and deny over every syscall of
// all three x86 ABIs: the largest tree an allowlist can produce.
func TestWorstCaseFragmentation(t *testing.T) {
	var names []string
	for i, e := range syscalls_x86_64 {
		if i%2 == 0 {
			names = append(names, e.name)
		}
	}
	prog, err := compile(&specs.LinuxSeccomp{
		DefaultAction: specs.ActErrno,
		Architectures: []specs.Arch{specs.ArchX86, specs.ArchX32},
		Syscalls:      []specs.LinuxSyscall{{Names: names, Action: specs.ActAllow}},
	}, "amd64")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d instructions", len(prog))
	v := newVM(t, prog)
	// Every number of every section, so both the short conditional jumps
	// and the ja trampolines of big subtrees are exercised on both sides.
	for _, sec := range []struct {
		arch  uint32
		table syscallTable
	}{{x86_64, syscalls_x86_64}, {x86_64, syscalls_x32}, {i386, syscalls_i386}} {
		allowed := map[uint32]bool{}
		var first, last uint32 = ^uint32(0), 0
		for _, n := range names {
			if x, ok := sec.table.lookup(n); ok {
				allowed[x] = true
				first, last = min(first, x), max(last, x)
			}
		}
		for n := first &^ 0xfff; n <= last+2; n++ {
			want := retEPERM
			switch {
			case allowed[n]:
				want = retAllow
			case n > last:
				want = retENOSYS
			}
			if got := v.run(t, sec.arch, n); got != want {
				t.Errorf("arch %#x nr %#x: got %#x, want %#x", sec.arch, n, got, want)
			}
		}
	}
}

func BenchmarkCompileDockerSized(b *testing.B) {
	s, _ := dockerSizedProfile()
	for b.Loop() {
		if _, err := compile(s, "amd64"); err != nil {
			b.Fatal(err)
		}
	}
}

// TestLongJumps gives many syscalls argument rules, so subtrees grow past
// the 255 instructions a conditional jump can skip and the tree must route
// through ja trampolines.
func TestLongJumps(t *testing.T) {
	s := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow}
	ruled := map[uint32]bool{}
	for i, e := range syscalls_x86_64 {
		if i%2 == 0 {
			ruled[e.nr] = true
			s.Syscalls = append(s.Syscalls, specs.LinuxSyscall{Names: []string{e.name}, Action: specs.ActErrno,
				ErrnoRet: uptr(uint(e.nr)), Args: []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpEqualTo, Value: uint64(e.nr)}}})
		}
	}
	prog, err := compile(s, "amd64")
	if err != nil {
		t.Fatal(err)
	}
	trampolines := 0
	for _, ins := range prog[4:] { // past the header's own ja
		if ins.Code == ja {
			trampolines++
		}
	}
	t.Logf("%d instructions, %d trampolines", len(prog), trampolines)
	if trampolines == 0 {
		t.Fatal("no ja trampoline: the test no longer covers long jumps")
	}
	v := newVM(t, prog)
	for n := uint32(0); n < 600; n++ {
		want := uint32(retAllow)
		if ruled[n] {
			want = errnoRet(n)
		}
		if got := v.run(t, x86_64, n, uint64(n)); got != want {
			t.Errorf("nr %d arg0 %d: got %#x, want %#x", n, n, got, want)
		}
		if got := v.run(t, x86_64, n, uint64(n)+1); got != retAllow {
			t.Errorf("nr %d arg0 %d: got %#x, want allow", n, n+1, got)
		}
	}
}
