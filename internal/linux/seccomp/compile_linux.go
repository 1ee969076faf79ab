package seccomp

import (
	"errors"
	"fmt"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// maxInsns is BPF_MAXINSNS: the kernel refuses longer programs.
const maxInsns = 4096

// Offsets into struct seccomp_data. Every architecture berth emits sections
// for is little-endian, so the low word of args[i] comes first.
const (
	offNr   = 0
	offArch = 4
	offArgs = 16
)

const (
	ldAbs = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
	jeqK  = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
	jgtK  = unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K
	jgeK  = unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K
	ja    = unix.BPF_JMP | unix.BPF_JA
	andK  = unix.BPF_ALU | unix.BPF_AND | unix.BPF_K
	retK  = unix.BPF_RET | unix.BPF_K
)

func stmt(code uint16, k uint32) unix.SockFilter { return unix.SockFilter{Code: code, K: k} }

func jump(code uint16, k uint32, jt, jf uint8) unix.SockFilter {
	return unix.SockFilter{Code: code, Jt: jt, Jf: jf, K: k}
}

// badArchRet is returned for an architecture the filter does not cover; see
// the package documentation for why this is not libseccomp's KILL_THREAD.
const badArchRet = unix.SECCOMP_RET_KILL_PROCESS

// Compile translates s into a seccomp BPF program for the architecture this
// binary was built for. The result is ready for Load.
//
// Compile is pure and takes a few hundred microseconds for a Docker-sized
// profile: a runtime should call it in the parent, before or while the
// container's init is set up, so a bad profile fails `create` early and the
// init only has to call Load.
func Compile(s *specs.LinuxSeccomp) ([]unix.SockFilter, error) {
	return compile(s, nativeArch())
}

// argCond is one validated argument comparison.
type argCond struct {
	index    uint
	gen      condGen
	val, two uint64
}

// rule is one validated OCI syscall rule.
type rule struct {
	names []string
	ret   uint32
	args  []argCond
}

func compile(s *specs.LinuxSeccomp, goarch string) ([]unix.SockFilter, error) {
	if s == nil {
		return nil, errors.New("seccomp: no configuration")
	}
	if s.ListenerPath != "" {
		return nil, fmt.Errorf("seccomp listenerPath: %w", ErrNotSupported)
	}
	if _, err := filterFlags(s.Flags); err != nil {
		return nil, err
	}
	if s.DefaultErrnoRet != nil && s.DefaultAction != specs.ActErrno && s.DefaultAction != specs.ActTrace {
		return nil, fmt.Errorf("seccomp: defaultErrnoRet is only valid with SCMP_ACT_ERRNO and SCMP_ACT_TRACE, not %s", s.DefaultAction)
	}
	defRet, err := actionRet(s.DefaultAction, s.DefaultErrnoRet)
	if err != nil {
		return nil, fmt.Errorf("seccomp defaultAction: %w", err)
	}
	arches, err := selectArches(goarch, s.Architectures)
	if err != nil {
		return nil, err
	}

	// Validate every rule before dropping any, so a typo in a rule that
	// happens to repeat the default action is still reported.
	var rules []rule
	for i, sc := range s.Syscalls {
		ret, err := actionRet(sc.Action, sc.ErrnoRet)
		if err != nil {
			return nil, fmt.Errorf("seccomp syscalls[%d] %v: %w", i, sc.Names, err)
		}
		r := rule{names: sc.Names, ret: ret}
		for _, a := range sc.Args {
			if a.Index >= 6 {
				return nil, fmt.Errorf("seccomp syscalls[%d] %v: argument index %d out of range 0..5", i, sc.Names, a.Index)
			}
			gen, ok := condGens[a.Op]
			if !ok {
				return nil, fmt.Errorf("seccomp syscalls[%d] %v: unknown operator %q", i, sc.Names, a.Op)
			}
			r.args = append(r.args, argCond{index: a.Index, gen: gen, val: a.Value, two: a.ValueTwo})
		}
		rules = append(rules, r)
	}

	// Emit one section per audit architecture, then the dispatch header that
	// jumps to them. x32 shares x86_64's audit value: its section is nested in
	// x86_64's behind the __X32_SYSCALL_BIT test.
	var sections [][]unix.SockFilter
	var audits []uint32
	var x32Code []unix.SockFilter
	haveX32 := false
	for _, a := range arches {
		if a == archX32 {
			haveX32 = true
			x32Code = genSection(a, rules, defRet)
		}
	}
	for _, a := range arches {
		if a == archX32 {
			continue
		}
		code := []unix.SockFilter{stmt(ldAbs, offNr)}
		if a == archX86_64 {
			main := genSection(a, rules, defRet)
			if haveX32 {
				code = append(code, jump(jgeK, x32SyscallBit, 0, 1), stmt(ja, uint32(len(main))))
				code = append(code, main...)
				code = append(code, x32Code...)
			} else {
				code = append(code, jump(jgeK, x32SyscallBit, 0, 1), stmt(retK, badArchRet))
				code = append(code, main...)
			}
		} else {
			code = append(code, genSection(a, rules, defRet)...)
		}
		sections = append(sections, code)
		audits = append(audits, a.audit)
	}

	// Header: ld arch; per section "jeq audit, 0, 1; ja section"; bad arch.
	prog := []unix.SockFilter{stmt(ldAbs, offArch)}
	headerLen := 1 + 2*len(sections) + 1
	target := headerLen // index of sections[i]
	for i, sec := range sections {
		// Jump offsets count from the instruction after the jump; the ja
		// of section i sits at index 2+2i.
		jaIdx := 2 + 2*i
		prog = append(prog, jump(jeqK, audits[i], 0, 1), stmt(ja, uint32(target-jaIdx-1)))
		target += len(sec)
	}
	prog = append(prog, stmt(retK, badArchRet))
	for _, sec := range sections {
		prog = append(prog, sec...)
	}
	if len(prog) > maxInsns {
		return nil, fmt.Errorf("seccomp: program has %d instructions, the kernel allows %d", len(prog), maxInsns)
	}
	return prog, nil
}

// segment is a run of syscall numbers starting at start (and ending where the
// next segment starts) that share one outcome: the return value ret, after
// the argument rules conds (nil for a plain return) are checked in order.
type segment struct {
	start uint32
	ret   uint32
	conds []rule
}

// genSection emits the binary search over arch's syscall numbers. It expects
// the syscall number in A.
func genSection(arch *archInfo, rules []rule, defRet uint32) []unix.SockFilter {
	n := 0
	for _, r := range rules {
		n += len(r.names)
	}
	uncond := make(map[uint32]uint32, n) // first argument-less rule per number
	conds := map[uint32][]rule{}         // argument rules per number, in order
	nrs := make([]uint32, 0, n)
	var last uint32
	named := false
	for _, r := range rules {
		for _, name := range r.names {
			nr, ok := arch.table.lookup(name)
			if !ok {
				continue // not a syscall on this architecture
			}
			if !named || nr > last {
				last, named = nr, true
			}
			if r.ret == defRet {
				continue
			}
			_, seen := uncond[nr]
			if len(r.args) == 0 {
				if !seen {
					uncond[nr] = r.ret
				}
			} else {
				conds[nr] = append(conds[nr], r)
			}
			nrs = append(nrs, nr) // deduplicated after sorting
		}
	}
	slices.Sort(nrs)
	nrs = slices.Compact(nrs)

	var segs []segment
	add := func(s segment) {
		if n := len(segs); n > 0 && s.conds == nil && segs[n-1].conds == nil && segs[n-1].ret == s.ret {
			return // extends the previous range
		}
		segs = append(segs, s)
	}
	next := uint64(arch.lo) // first number not yet covered
	for _, nr := range nrs {
		if uint64(nr) > next {
			add(segment{start: uint32(next), ret: defRet})
		}
		ret, ok := uncond[nr]
		if !ok {
			ret = defRet
		}
		add(segment{start: nr, ret: ret, conds: conds[nr]})
		next = uint64(nr) + 1
	}
	if named && !allows(defRet) && uint64(last) < uint64(arch.hi) {
		if next <= uint64(last) {
			add(segment{start: uint32(next), ret: defRet})
		}
		add(segment{start: last + 1, ret: unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)})
	} else if next <= uint64(arch.hi) {
		add(segment{start: uint32(next), ret: defRet})
	}
	sizes := make([]int, len(segs))
	for i, s := range segs {
		sizes[i] = len(genLeaf(nil, s))
	}
	return genTree(make([]unix.SockFilter, 0, treeSize(sizes)), segs, sizes)
}

// treeSize is the length of genTree's output for leaves of the given sizes.
func treeSize(sizes []int) int {
	if len(sizes) == 1 {
		return sizes[0]
	}
	m := len(sizes) / 2
	left := treeSize(sizes[:m])
	n := 1
	if left > 255 {
		n = 2
	}
	return n + left + treeSize(sizes[m:])
}

// genTree appends a binary search over segs (sorted, contiguous) to code.
// Conditional jumps reach at most 255 instructions ahead; when the left
// subtree is longer, the jump goes through an unconditional ja, which has 32
// bits.
func genTree(code []unix.SockFilter, segs []segment, sizes []int) []unix.SockFilter {
	if len(segs) == 1 {
		return genLeaf(code, segs[0])
	}
	m := len(segs) / 2
	left := treeSize(sizes[:m])
	k := segs[m].start
	if left <= 255 {
		code = append(code, jump(jgeK, k, uint8(left), 0))
	} else {
		code = append(code, jump(jgeK, k, 0, 1), stmt(ja, uint32(left)))
	}
	code = genTree(code, segs[:m], sizes[:m])
	return genTree(code, segs[m:], sizes[m:])
}

func genLeaf(code []unix.SockFilter, s segment) []unix.SockFilter {
	for _, r := range s.conds {
		code = append(code, genRule(r)...)
	}
	return append(code, stmt(retK, s.ret))
}

// Placeholder jump targets inside one rule, resolved by genRule.
const (
	toNext = 0xfe // the next condition (success of this one)
	toFail = 0xff // past the rule's return (the rule does not match)
)

// genRule emits the AND of r's conditions followed by r's return; any failed
// condition jumps past the return, to the next rule.
func genRule(r rule) []unix.SockFilter {
	var code []unix.SockFilter
	for _, c := range r.args {
		lo := uint32(offArgs + 8*c.index)
		block := c.gen(lo+4, lo, c.val, c.two)
		for i := range block {
			if block[i].Jt == toNext {
				block[i].Jt = uint8(len(block) - i - 1)
			}
			if block[i].Jf == toNext {
				block[i].Jf = uint8(len(block) - i - 1)
			}
		}
		code = append(code, block...)
	}
	code = append(code, stmt(retK, r.ret))
	for i := range code {
		if code[i].Jt == toFail {
			code[i].Jt = uint8(len(code) - i - 1)
		}
		if code[i].Jf == toFail {
			code[i].Jf = uint8(len(code) - i - 1)
		}
	}
	return code
}

// condGen emits one 64-bit unsigned comparison of the argument whose words
// are at offsets hi and lo, as 32-bit operations on the high word, then the
// low word. Jump offsets are relative within the block, or toNext / toFail.
// Only conditional jumps are emitted, so Jt and Jf are always offsets.
type condGen func(hi, lo uint32, val, two uint64) []unix.SockFilter

var condGens = map[specs.LinuxSeccompOperator]condGen{
	specs.OpEqualTo: func(hi, lo uint32, v, _ uint64) []unix.SockFilter {
		return []unix.SockFilter{
			stmt(ldAbs, hi), jump(jeqK, uint32(v>>32), 0, toFail),
			stmt(ldAbs, lo), jump(jeqK, uint32(v), toNext, toFail),
		}
	},
	specs.OpNotEqual: func(hi, lo uint32, v, _ uint64) []unix.SockFilter {
		return []unix.SockFilter{
			stmt(ldAbs, hi), jump(jeqK, uint32(v>>32), 0, toNext),
			stmt(ldAbs, lo), jump(jeqK, uint32(v), toFail, toNext),
		}
	},
	specs.OpGreaterThan: func(hi, lo uint32, v, _ uint64) []unix.SockFilter {
		return greater(hi, lo, v, jgtK)
	},
	specs.OpGreaterEqual: func(hi, lo uint32, v, _ uint64) []unix.SockFilter {
		return greater(hi, lo, v, jgeK)
	},
	// a < v is !(a >= v), a <= v is !(a > v): the same code, outcomes swapped.
	specs.OpLessThan: func(hi, lo uint32, v, _ uint64) []unix.SockFilter {
		return swap(greater(hi, lo, v, jgeK))
	},
	specs.OpLessEqual: func(hi, lo uint32, v, _ uint64) []unix.SockFilter {
		return swap(greater(hi, lo, v, jgtK))
	},
	// OCI: value is the mask, valueTwo the datum the masked argument equals.
	specs.OpMaskedEqual: func(hi, lo uint32, mask, datum uint64) []unix.SockFilter {
		return []unix.SockFilter{
			stmt(ldAbs, hi), stmt(andK, uint32(mask>>32)), jump(jeqK, uint32(datum>>32), 0, toFail),
			stmt(ldAbs, lo), stmt(andK, uint32(mask)), jump(jeqK, uint32(datum), toNext, toFail),
		}
	},
}

// greater matches a > v (loOp jgt) or a >= v (loOp jge): the high word
// decides unless it is equal, then the low word does.
func greater(hi, lo uint32, v uint64, loOp uint16) []unix.SockFilter {
	vhi := uint32(v >> 32)
	return []unix.SockFilter{
		stmt(ldAbs, hi), jump(jgtK, vhi, toNext, 0), jump(jeqK, vhi, 0, toFail),
		stmt(ldAbs, lo), jump(loOp, uint32(v), toNext, toFail),
	}
}

// swap negates a condition block by exchanging its two exits.
func swap(block []unix.SockFilter) []unix.SockFilter {
	for i := range block {
		for _, p := range []*uint8{&block[i].Jt, &block[i].Jf} {
			switch *p {
			case toNext:
				*p = toFail
			case toFail:
				*p = toNext
			}
		}
	}
	return block
}
