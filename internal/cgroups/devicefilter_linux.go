package cgroups

import (
	"fmt"
	"math"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The device filter is assembled by hand, as crun does, rather than with
// github.com/cilium/ebpf. berth-runtime is a short-lived binary started
// several times per container (the CLI process, the container's init), so
// container start latency is bounded by its process start-up, and linking
// cilium/ebpf costs start-up for code this program never runs: it pulls in
// go/parser, debug/elf, encoding/xml, crypto and more, 74 package inits
// instead of 38 in berth-runtime, and ~0.6 ms (a binary that only
// blank-imports cilium/ebpf starts in 2.4 ms, an empty Go program in
// 1.8 ms). The program has a fixed shape built from eight kinds of
// instruction, so a small assembler for those (bpf_insn_linux.go) and five
// raw bpf(2) commands (bpf_syscall_linux.go) are all it takes.

// Values of struct bpf_cgroup_dev_ctx (include/uapi/linux/bpf.h): the low
// 16 bits of access_type are the device type, the high 16 bits the access.
const (
	bpfDevBlock = unix.BPF_DEVCG_DEV_BLOCK
	bpfDevChar  = unix.BPF_DEVCG_DEV_CHAR

	bpfAccMknod = unix.BPF_DEVCG_ACC_MKNOD
	bpfAccRead  = unix.BPF_DEVCG_ACC_READ
	bpfAccWrite = unix.BPF_DEVCG_ACC_WRITE
)

// deviceFilterLicense is the program's license string; the kernel only
// checks it for GPL-only helpers, which the filter does not call.
const deviceFilterLicense = "Apache"

// deviceFilter compiles OCI device rules into a BPF_PROG_TYPE_CGROUP_DEVICE
// program with the semantics of the v1 devices controller as berth's v1
// writer drives it: the last rule matching a device decides, and a device
// no rule matches is allowed (a fresh v1 cgroup inherits the root's
// allow-all; real configs start with a deny-all rule).
//
// The kernel may ask for several accesses at once (open O_RDWR asks for
// read|write). Each requested access is decided on its own, by the last
// rule matching the device that mentions that access, and the request is
// allowed only if every access is. This is exact last-match-wins; a
// whole-request match would let "allow r" then "allow w" still deny rw.
//
// Layout: R2 = type, R3 = requested access, R4 = major, R5 = minor; then
// for each access bit a block that is skipped if the bit is not requested,
// walks the rules mentioning the bit from last to first, and on the first
// match either denies (return 0) or moves on to the next bit.
func deviceFilter(rules []specs.LinuxDeviceCgroup) ([]bpfInsn, error) {
	type rule struct {
		typ          int32 // 0 = any
		major, minor int64 // -1 = any
		access       int32
		allow        bool
	}
	parsed := make([]rule, 0, len(rules))
	for _, r := range rules {
		x := rule{major: -1, minor: -1, allow: r.Allow}
		switch r.Type {
		case "", "a":
		case "c":
			x.typ = bpfDevChar
		case "b":
			x.typ = bpfDevBlock
		default:
			return nil, fmt.Errorf("invalid device type %q", r.Type)
		}
		for _, n := range []struct {
			p   *int64
			dst *int64
		}{{r.Major, &x.major}, {r.Minor, &x.minor}} {
			if n.p != nil && *n.p >= 0 {
				if *n.p > math.MaxInt32 {
					return nil, fmt.Errorf("invalid device number %d", *n.p)
				}
				*n.dst = *n.p
			}
		}
		access := r.Access
		if access == "" {
			access = "rwm"
		}
		for _, c := range access {
			switch c {
			case 'r':
				x.access |= bpfAccRead
			case 'w':
				x.access |= bpfAccWrite
			case 'm':
				x.access |= bpfAccMknod
			default:
				return nil, fmt.Errorf("invalid device access %q", r.Access)
			}
		}
		if r.Type == "" || r.Type == "a" {
			// A type wildcard is a whole-table rule in v1, whatever
			// numbers it carries.
			x.major, x.minor, x.access = -1, -1, bpfAccRead|bpfAccWrite|bpfAccMknod
		}
		parsed = append(parsed, x)
	}

	var a bpfAsm
	// struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }
	// is read a word at a time: narrow loads of access_type would depend
	// on the byte order.
	a.ldxMem(unix.BPF_W, bpfR2, bpfR1, 0)
	a.alu32(unix.BPF_AND, bpfR2, 0xFFFF)
	a.ldxMem(unix.BPF_W, bpfR3, bpfR1, 0)
	a.alu32(unix.BPF_RSH, bpfR3, 16)
	a.ldxMem(unix.BPF_W, bpfR4, bpfR1, 4)
	a.ldxMem(unix.BPF_W, bpfR5, bpfR1, 8)
	for _, bit := range []int32{bpfAccRead, bpfAccWrite, bpfAccMknod} {
		nextBit, checkBit := a.newLabel(), a.newLabel()
		// if (R3 & bit) == 0 goto nextBit; eBPF has no "jump if clear".
		a.jmp(unix.BPF_JSET, bpfR3, bit, checkBit)
		a.ja(nextBit)
		a.place(checkBit)
		for i := len(parsed) - 1; i >= 0; i-- {
			r := parsed[i]
			if r.access&bit == 0 {
				continue
			}
			if r.typ == 0 && r.major < 0 && r.minor < 0 {
				// A rule matching every device decides, and the rules
				// before it are unreachable (the verifier rejects dead
				// code, so emit none).
				if r.allow {
					a.ja(nextBit)
				} else {
					a.ret(0)
				}
				break
			}
			nextRule := a.newLabel()
			if r.typ != 0 {
				a.jmp(unix.BPF_JNE, bpfR2, r.typ, nextRule)
			}
			if r.major >= 0 {
				a.jmp(unix.BPF_JNE, bpfR4, int32(r.major), nextRule)
			}
			if r.minor >= 0 {
				a.jmp(unix.BPF_JNE, bpfR5, int32(r.minor), nextRule)
			}
			if r.allow {
				a.ja(nextBit)
			} else {
				a.ret(0)
			}
			a.place(nextRule)
		}
		// No rule mentions this access for this device: allowed, as in a
		// v1 cgroup that never saw a deny-all.
		a.place(nextBit)
	}
	a.ret(1)
	return a.assemble()
}
