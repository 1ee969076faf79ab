package cgroups

import (
	"fmt"
	"math"
	"strconv"

	"github.com/cilium/ebpf/asm"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Values of struct bpf_cgroup_dev_ctx (include/uapi/linux/bpf.h): the low
// 16 bits of access_type are the device type, the high 16 bits the access.
const (
	bpfDevBlock = 1 // BPF_DEVCG_DEV_BLOCK
	bpfDevChar  = 2 // BPF_DEVCG_DEV_CHAR

	bpfAccMknod = 1 // BPF_DEVCG_ACC_MKNOD
	bpfAccRead  = 2 // BPF_DEVCG_ACC_READ
	bpfAccWrite = 4 // BPF_DEVCG_ACC_WRITE
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
func deviceFilter(rules []specs.LinuxDeviceCgroup) (asm.Instructions, error) {
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

	insns := asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, 0, asm.Word),
		asm.And.Imm32(asm.R2, 0xFFFF),
		asm.LoadMem(asm.R3, asm.R1, 0, asm.Word),
		asm.RSh.Imm32(asm.R3, 16),
		asm.LoadMem(asm.R4, asm.R1, 4, asm.Word),
		asm.LoadMem(asm.R5, asm.R1, 8, asm.Word),
	}
	// Labels mark jump targets. Several may land on the same spot and an
	// instruction carries one symbol, so each label gets its own no-op
	// (R0 is scratch until the final "R0 = verdict").
	label := func(name string) asm.Instruction {
		return asm.Mov.Imm(asm.R0, 0).WithSymbol(name)
	}
	n := 0
	for bitIdx, bit := range []int32{bpfAccRead, bpfAccWrite, bpfAccMknod} {
		nextBit := "bit-" + strconv.Itoa(bitIdx+1)
		// if (R3 & bit) == 0 goto nextBit
		insns = append(insns,
			asm.Mov.Reg32(asm.R1, asm.R3),
			asm.And.Imm32(asm.R1, bit),
			asm.JEq.Imm(asm.R1, 0, nextBit),
		)
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
					insns = append(insns, asm.Ja.Label(nextBit))
				} else {
					insns = append(insns, asm.Mov.Imm(asm.R0, 0), asm.Return())
				}
				break
			}
			nextRule := "rule-" + strconv.Itoa(n)
			n++
			if r.typ != 0 {
				insns = append(insns, asm.JNE.Imm(asm.R2, r.typ, nextRule))
			}
			if r.major >= 0 {
				insns = append(insns, asm.JNE.Imm(asm.R4, int32(r.major), nextRule))
			}
			if r.minor >= 0 {
				insns = append(insns, asm.JNE.Imm(asm.R5, int32(r.minor), nextRule))
			}
			if r.allow {
				insns = append(insns, asm.Ja.Label(nextBit))
			} else {
				insns = append(insns, asm.Mov.Imm(asm.R0, 0), asm.Return())
			}
			insns = append(insns, label(nextRule))
		}
		// No rule mentions this access for this device: allowed, as in a
		// v1 cgroup that never saw a deny-all.
		insns = append(insns, label(nextBit))
	}
	insns = append(insns, asm.Mov.Imm(asm.R0, 1), asm.Return())
	return insns, nil
}
