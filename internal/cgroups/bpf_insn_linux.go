package cgroups

import (
	"encoding/binary"
	"fmt"
	"math"

	"golang.org/x/sys/unix"
)

// bpfInsn is struct bpf_insn (include/uapi/linux/bpf.h), the 8-byte eBPF
// instruction the kernel loads: a program is a []bpfInsn handed to
// BPF_PROG_LOAD as is.
type bpfInsn struct {
	code uint8 // class | operation | source (or size | mode for loads)
	regs uint8 // dst_reg:4, src_reg:4 (see bpfRegs)
	off  int16 // memory offset, or jump distance in instructions
	imm  int32
}

// eBPF registers. R1 holds the context pointer on entry, R0 the return
// value on exit; R2-R5 are scratch here.
const (
	bpfR0 = iota
	bpfR1
	bpfR2
	bpfR3
	bpfR4
	bpfR5
)

// bpfRegs packs dst_reg:4 and src_reg:4. C bit-fields are allocated from
// the least significant bit on little-endian ABIs and from the most
// significant on big-endian ones, so dst_reg is the low nibble on amd64
// and arm64 but the high one on s390x.
func bpfRegs(dst, src uint8) uint8 {
	if binary.NativeEndian.Uint16([]byte{0, 1}) == 1 {
		return dst<<4 | src
	}
	return src<<4 | dst
}

// bpfAsm assembles the few instructions the device filter needs: 32-bit
// context loads, ALU operations with an immediate, conditional jumps
// against an immediate, goto and exit. Jumps name a label, resolved to a
// relative offset by assemble, so the code emitting a rule need not know
// how long the rest of the program will be.
type bpfAsm struct {
	insns  []bpfInsn
	labels []int // label -> index of the instruction it marks, -1 until placed
	jumps  []struct{ insn, label int }
}

// newLabel returns a label to jump to; place marks where it lands.
func (a *bpfAsm) newLabel() int {
	a.labels = append(a.labels, -1)
	return len(a.labels) - 1
}

// place makes label l refer to the next instruction emitted. Several labels
// may refer to the same instruction.
func (a *bpfAsm) place(l int) { a.labels[l] = len(a.insns) }

// ldxMem emits dst = *(size *)(src + off), size being unix.BPF_W or BPF_H.
func (a *bpfAsm) ldxMem(size, dst, src uint8, off int16) {
	a.insns = append(a.insns, bpfInsn{code: unix.BPF_LDX | unix.BPF_MEM | size, regs: bpfRegs(dst, src), off: off})
}

// alu32 emits dst = (u32)dst op imm: the 32-bit ALU zero-extends its
// result into the upper half of dst.
func (a *bpfAsm) alu32(op, dst uint8, imm int32) {
	a.insns = append(a.insns, bpfInsn{code: unix.BPF_ALU | op | unix.BPF_K, regs: bpfRegs(dst, 0), imm: imm})
}

// alu64 emits dst = dst op imm on all 64 bits (imm is sign-extended).
func (a *bpfAsm) alu64(op, dst uint8, imm int32) {
	a.insns = append(a.insns, bpfInsn{code: unix.BPF_ALU64 | op | unix.BPF_K, regs: bpfRegs(dst, 0), imm: imm})
}

// jmp emits "if dst op imm goto label", op being BPF_JEQ, BPF_JNE or
// BPF_JSET (dst & imm != 0), comparing all 64 bits of dst.
func (a *bpfAsm) jmp(op, dst uint8, imm int32, label int) {
	a.jumps = append(a.jumps, struct{ insn, label int }{len(a.insns), label})
	a.insns = append(a.insns, bpfInsn{code: unix.BPF_JMP | op | unix.BPF_K, regs: bpfRegs(dst, 0), imm: imm})
}

// ja emits "goto label".
func (a *bpfAsm) ja(label int) { a.jmp(unix.BPF_JA, 0, 0, label) }

// ret emits "R0 = v; exit".
func (a *bpfAsm) ret(v int32) {
	a.alu64(unix.BPF_MOV, bpfR0, v)
	a.insns = append(a.insns, bpfInsn{code: unix.BPF_JMP | unix.BPF_EXIT})
}

// assemble resolves every jump to an offset relative to the instruction
// after it (the kernel's pc += off + 1) and returns the program.
func (a *bpfAsm) assemble() ([]bpfInsn, error) {
	for _, j := range a.jumps {
		target := a.labels[j.label]
		if target < 0 || target >= len(a.insns) {
			return nil, fmt.Errorf("bpf: jump at %d to a label not placed before an instruction", j.insn)
		}
		off := target - (j.insn + 1)
		if off < math.MinInt16 || off > math.MaxInt16 {
			return nil, fmt.Errorf("bpf: jump at %d out of range (%d instructions)", j.insn, off)
		}
		a.insns[j.insn].off = int16(off)
	}
	return a.insns, nil
}
