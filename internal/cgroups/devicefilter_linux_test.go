package cgroups

import (
	"encoding/binary"
	"testing"

	"github.com/cilium/ebpf/asm"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// runDeviceFilter interprets the subset of eBPF that deviceFilter emits,
// so the program's decisions can be tested without root or a kernel.
func runDeviceFilter(t *testing.T, insns asm.Instructions, devType, access, major, minor uint32) bool {
	t.Helper()
	syms := map[string]int{}
	for i, ins := range insns {
		if s := ins.Symbol(); s != "" {
			syms[s] = i
		}
	}
	ctx := [3]uint32{devType | access<<16, major, minor}
	var reg [11]uint64
	for pc, steps := 0, 0; pc < len(insns); steps++ {
		if steps > 10000 {
			t.Fatal("program does not terminate")
		}
		ins := insns[pc]
		jump := func() {
			target, ok := syms[ins.Reference()]
			if !ok {
				t.Fatalf("instruction %d: unknown label %q", pc, ins.Reference())
			}
			pc = target
		}
		op := ins.OpCode
		switch {
		case op.Class() == asm.LdXClass:
			reg[ins.Dst] = uint64(ctx[ins.Offset/4])
		case op.Class().IsALU():
			src := uint64(ins.Constant)
			if op.Source() == asm.RegSource {
				src = reg[ins.Src]
			}
			switch op.ALUOp() {
			case asm.Mov:
				reg[ins.Dst] = src
			case asm.And:
				reg[ins.Dst] &= src
			case asm.RSh:
				reg[ins.Dst] >>= src
			default:
				t.Fatalf("unexpected ALU op %v", ins)
			}
			if op.Class() == asm.ALUClass {
				reg[ins.Dst] &= 0xffffffff
			}
		case op.Class().IsJump():
			switch op.JumpOp() {
			case asm.Exit:
				return reg[asm.R0] == 1
			case asm.Ja:
				jump()
				continue
			case asm.JEq, asm.JNE:
				eq := reg[ins.Dst] == uint64(ins.Constant)
				if eq == (op.JumpOp() == asm.JEq) {
					jump()
					continue
				}
			default:
				t.Fatalf("unexpected jump %v", ins)
			}
		default:
			t.Fatalf("unexpected instruction %v", ins)
		}
		pc++
	}
	t.Fatal("program ran off its end")
	return false
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
			insns, err := deviceFilter(tt.rules)
			if err != nil {
				t.Fatal(err)
			}
			// Resolving every jump against its label is what the loader
			// does; a dangling label fails here.
			if err := insns.Marshal(discard{}, binary.LittleEndian); err != nil {
				t.Fatalf("marshal: %v", err)
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

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
