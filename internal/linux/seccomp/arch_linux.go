package seccomp

import (
	"fmt"
	"runtime"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// x32SyscallBit is __X32_SYSCALL_BIT: x32 tasks report AUDIT_ARCH_X86_64 and
// set this bit in the syscall number, which is all that tells them apart from
// x86_64 tasks.
const x32SyscallBit = 0x40000000

// archInfo is one section of the filter: the syscall numbers [lo, hi] seen
// with audit architecture audit.
type archInfo struct {
	name   specs.Arch
	audit  uint32
	lo, hi uint32
	table  syscallTable
}

var (
	archX86_64  = &archInfo{specs.ArchX86_64, unix.AUDIT_ARCH_X86_64, 0, x32SyscallBit - 1, syscalls_x86_64}
	archX32     = &archInfo{specs.ArchX32, unix.AUDIT_ARCH_X86_64, x32SyscallBit, 0xffffffff, syscalls_x32}
	archX86     = &archInfo{specs.ArchX86, unix.AUDIT_ARCH_I386, 0, 0xffffffff, syscalls_i386}
	archAARCH64 = &archInfo{specs.ArchAARCH64, unix.AUDIT_ARCH_AARCH64, 0, 0xffffffff, syscalls_aarch64}
	archARM     = &archInfo{specs.ArchARM, unix.AUDIT_ARCH_ARM, 0, 0xffffffff, syscalls_arm}
)

// families lists, per GOARCH, the native architecture first and then the
// ones whose binaries the same kernel can run.
var families = map[string][]*archInfo{
	"amd64": {archX86_64, archX86, archX32},
	"arm64": {archAARCH64, archARM},
}

// knownArches are the names the OCI spec defines. Those outside the host's
// family are accepted and ignored: the kernel never runs them here.
var knownArches = map[specs.Arch]bool{
	specs.ArchX86: true, specs.ArchX86_64: true, specs.ArchX32: true,
	specs.ArchARM: true, specs.ArchAARCH64: true,
	specs.ArchMIPS: true, specs.ArchMIPS64: true, specs.ArchMIPS64N32: true,
	specs.ArchMIPSEL: true, specs.ArchMIPSEL64: true, specs.ArchMIPSEL64N32: true,
	specs.ArchPPC: true, specs.ArchPPC64: true, specs.ArchPPC64LE: true,
	specs.ArchS390: true, specs.ArchS390X: true, specs.ArchPARISC: true,
	specs.ArchPARISC64: true, specs.ArchRISCV64: true, specs.ArchLOONGARCH64: true,
}

// selectArches returns the sections to emit for goarch: the native
// architecture plus every listed one of its family, in family order.
func selectArches(goarch string, listed []specs.Arch) ([]*archInfo, error) {
	family, ok := families[goarch]
	if !ok {
		return nil, fmt.Errorf("seccomp: architecture %s: %w", goarch, ErrNotSupported)
	}
	want := map[specs.Arch]bool{family[0].name: true}
	for _, a := range listed {
		if !knownArches[a] {
			return nil, fmt.Errorf("unknown seccomp architecture %q", a)
		}
		want[a] = true
	}
	var out []*archInfo
	for _, a := range family {
		if want[a.name] {
			out = append(out, a)
		}
	}
	return out, nil
}

func nativeArch() string { return runtime.GOARCH }
