package cgroups

import (
	"testing"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// runDeviceFilter interprets the subset of eBPF that deviceFilter emits,
// decoding the instructions as the kernel would, so the program's decisions
// can be tested without root or a kernel.
func runDeviceFilter(t *testing.T, insns []bpfInsn, devType, access, major, minor uint32) bool {
	t.Helper()
	ctx := [3]uint32{devType | access<<16, major, minor}
	var reg [11]uint64
	for pc, steps := 0, 0; ; steps++ {
		if steps > 10000 {
			t.Fatal("program does not terminate")
		}
		if pc < 0 || pc >= len(insns) {
			t.Fatalf("program jumped to %d, outside its %d instructions", pc, len(insns))
		}
		ins := insns[pc]
		dst, src := decodeRegs(ins.regs)
		class, op := ins.code&0x07, ins.code&0xf0
		switch class {
		case unix.BPF_LDX:
			if ins.code != unix.BPF_LDX|unix.BPF_MEM|unix.BPF_W || src != bpfR1 || ins.off%4 != 0 {
				t.Fatalf("instruction %d: unexpected load %+v", pc, ins)
			}
			reg[dst] = uint64(ctx[ins.off/4])
		case unix.BPF_ALU, unix.BPF_ALU64:
			if ins.code&unix.BPF_X != 0 {
				t.Fatalf("instruction %d: unexpected register source %+v", pc, ins)
			}
			imm := uint64(int64(ins.imm)) // sign-extended, as the kernel does
			switch op {
			case unix.BPF_MOV:
				reg[dst] = imm
			case unix.BPF_AND:
				reg[dst] &= imm
			case unix.BPF_RSH:
				reg[dst] >>= imm
			default:
				t.Fatalf("instruction %d: unexpected ALU op %+v", pc, ins)
			}
			if class == unix.BPF_ALU {
				reg[dst] &= 0xffffffff
			}
		case unix.BPF_JMP:
			if ins.code&unix.BPF_X != 0 {
				t.Fatalf("instruction %d: unexpected register source %+v", pc, ins)
			}
			imm := uint64(int64(ins.imm))
			var taken bool
			switch op {
			case unix.BPF_EXIT:
				return reg[bpfR0] == 1
			case unix.BPF_JA:
				taken = true
			case unix.BPF_JEQ:
				taken = reg[dst] == imm
			case unix.BPF_JNE:
				taken = reg[dst] != imm
			case unix.BPF_JSET:
				taken = reg[dst]&imm != 0
			default:
				t.Fatalf("instruction %d: unexpected jump %+v", pc, ins)
			}
			if taken {
				pc += int(ins.off)
			}
		default:
			t.Fatalf("instruction %d: unexpected class %+v", pc, ins)
		}
		pc++
	}
}

// decodeRegs undoes bpfRegs.
func decodeRegs(r uint8) (dst, src uint8) {
	if bpfRegs(1, 0) == 1 {
		return r & 0xf, r >> 4
	}
	return r >> 4, r & 0xf
}

func i64(v int64) *int64 { return &v }

func TestDeviceFilter(t *testing.T) {
	const (
		c, b       = bpfDevChar, bpfDevBlock
		r, w, m    = bpfAccRead, bpfAccWrite, bpfAccMknod
		rw, rwm    = r | w, r | w | m
		allow      = true
		deny       = false
		nullMajor  = 1
		nullMinor  = 3
		ttyMajor   = 136
		blockMajor = 8
	)
	denyAll := specs.LinuxDeviceCgroup{Allow: false, Access: "rwm"}
	type check struct {
		typ, access, major, minor uint32
		want                      bool
	}
	tests := []struct {
		name   string
		rules  []specs.LinuxDeviceCgroup
		checks []check
	}{
		{
			name:  "deny all",
			rules: []specs.LinuxDeviceCgroup{denyAll},
			checks: []check{
				{c, r, nullMajor, nullMinor, deny},
				{b, m, blockMajor, 0, deny},
			},
		},
		{
			name:  "no rules mentioning a device allow it, as v1 does",
			rules: []specs.LinuxDeviceCgroup{{Allow: false, Type: "c", Major: i64(10), Minor: i64(200), Access: "rwm"}},
			checks: []check{
				{c, rw, 10, 200, deny},
				{c, rw, nullMajor, nullMinor, allow},
			},
		},
		{
			name: "deny all then allow null and all ttys read-write",
			rules: []specs.LinuxDeviceCgroup{
				denyAll,
				{Allow: true, Type: "c", Major: i64(nullMajor), Minor: i64(nullMinor), Access: "rwm"},
				{Allow: true, Type: "c", Major: i64(ttyMajor), Access: "rw"},
			},
			checks: []check{
				{c, rw, nullMajor, nullMinor, allow},
				{c, m, nullMajor, nullMinor, allow},
				{b, r, nullMajor, nullMinor, deny}, // type matters
				{c, r, nullMajor, 5, deny},
				{c, rw, ttyMajor, 7, allow},
				{c, m, ttyMajor, 7, deny}, // access matters
				{c, rwm, ttyMajor, 7, deny},
			},
		},
		{
			name: "last matching rule wins",
			rules: []specs.LinuxDeviceCgroup{
				denyAll,
				{Allow: true, Type: "c", Major: i64(nullMajor), Access: "rwm"},
				{Allow: false, Type: "c", Major: i64(nullMajor), Minor: i64(nullMinor), Access: "w"},
			},
			checks: []check{
				{c, r, nullMajor, nullMinor, allow},
				{c, rw, nullMajor, nullMinor, deny},
				{c, rw, nullMajor, 5, allow},
			},
		},
		{
			name: "accesses granted by separate rules combine",
			rules: []specs.LinuxDeviceCgroup{
				denyAll,
				{Allow: true, Type: "c", Major: i64(5), Minor: i64(0), Access: "r"},
				{Allow: true, Type: "c", Major: i64(5), Minor: i64(0), Access: "w"},
			},
			checks: []check{{c, rw, 5, 0, allow}, {c, m, 5, 0, deny}},
		},
		{
			name:   "allow all after deny all",
			rules:  []specs.LinuxDeviceCgroup{denyAll, {Allow: true, Type: "a"}},
			checks: []check{{b, rwm, blockMajor, 1, allow}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// deviceFilter resolves every jump against its label; a
			// dangling label fails here.
			insns, err := deviceFilter(tt.rules)
			if err != nil {
				t.Fatal(err)
			}
			for _, ck := range tt.checks {
				if got := runDeviceFilter(t, insns, ck.typ, ck.access, ck.major, ck.minor); got != ck.want {
					t.Errorf("type %d access %d %d:%d: allowed = %v, want %v", ck.typ, ck.access, ck.major, ck.minor, got, ck.want)
				}
			}
		})
	}
}

func TestDeviceFilterInvalid(t *testing.T) {
	for _, rule := range []specs.LinuxDeviceCgroup{
		{Type: "x"},
		{Type: "c", Access: "rx"},
		{Type: "c", Major: i64(1 << 40)},
	} {
		if _, err := deviceFilter([]specs.LinuxDeviceCgroup{rule}); err == nil {
			t.Errorf("rule %+v: want error", rule)
		}
	}
}

// TestBPFInsnEncoding checks the bytes the kernel receives against
// `llvm-mc -triple bpfel -show-encoding` (JSET, which LLVM neither emits
// nor assembles, against the opcode table in the kernel's
// Documentation/bpf/standardization/instruction-set.rst), so a mistake
// shared by the assembler and runDeviceFilter cannot go unnoticed.
func TestBPFInsnEncoding(t *testing.T) {
	if bpfRegs(1, 0) != 1 {
		t.Skip("expected bytes are for little-endian hosts")
	}
	if got := unsafe.Sizeof(bpfInsn{}); got != 8 {
		t.Fatalf("sizeof(bpfInsn) = %d, want 8", got)
	}
	tests := []struct {
		name string
		emit func(a *bpfAsm, l int)
		want []byte
	}{
		{"r2 = *(u32 *)(r1 + 4)", func(a *bpfAsm, l int) { a.ldxMem(unix.BPF_W, bpfR2, bpfR1, 4) },
			[]byte{0x61, 0x12, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00}},
		{"r3 = *(u16 *)(r1 + 2)", func(a *bpfAsm, l int) { a.ldxMem(unix.BPF_H, bpfR3, bpfR1, 2) },
			[]byte{0x69, 0x13, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00}},
		{"w2 &= 65535", func(a *bpfAsm, l int) { a.alu32(unix.BPF_AND, bpfR2, 0xFFFF) },
			[]byte{0x54, 0x02, 0x00, 0x00, 0xff, 0xff, 0x00, 0x00}},
		{"w3 >>= 16", func(a *bpfAsm, l int) { a.alu32(unix.BPF_RSH, bpfR3, 16) },
			[]byte{0x74, 0x03, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00}},
		{"r0 = -1", func(a *bpfAsm, l int) { a.alu64(unix.BPF_MOV, bpfR0, -1) },
			[]byte{0xb7, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff}},
		{"if r4 != 136 goto +1", func(a *bpfAsm, l int) { a.jmp(unix.BPF_JNE, bpfR4, 136, l) },
			[]byte{0x55, 0x04, 0x01, 0x00, 0x88, 0x00, 0x00, 0x00}},
		{"if r5 == 3 goto +1", func(a *bpfAsm, l int) { a.jmp(unix.BPF_JEQ, bpfR5, 3, l) },
			[]byte{0x15, 0x05, 0x01, 0x00, 0x03, 0x00, 0x00, 0x00}},
		{"if r3 & 4 goto +1", func(a *bpfAsm, l int) { a.jmp(unix.BPF_JSET, bpfR3, 4, l) },
			[]byte{0x45, 0x03, 0x01, 0x00, 0x04, 0x00, 0x00, 0x00}},
		{"goto +1", func(a *bpfAsm, l int) { a.ja(l) },
			[]byte{0x05, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00}},
		{"r0 = 1; exit", func(a *bpfAsm, l int) { a.ret(1) },
			[]byte{0xb7, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x95, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Each case is followed by one filler instruction and then
			// the label, so a jump to it skips exactly the filler: +1.
			var a bpfAsm
			l := a.newLabel()
			tt.emit(&a, l)
			n := len(a.insns)
			a.alu64(unix.BPF_MOV, bpfR0, 0)
			a.place(l)
			a.ret(1)
			insns, err := a.assemble()
			if err != nil {
				t.Fatal(err)
			}
			if bytes := unsafe.Slice((*byte)(unsafe.Pointer(&insns[0])), n*8); string(bytes) != string(tt.want) {
				t.Errorf("encoded % x, want % x", bytes, tt.want)
			}
		})
	}
}

func TestBPFAsmDanglingLabel(t *testing.T) {
	var a bpfAsm
	a.ja(a.newLabel())
	a.ret(1)
	if _, err := a.assemble(); err == nil {
		t.Error("jump to an unplaced label assembled")
	}
}
