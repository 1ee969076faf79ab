// The process entry point of berth-runtime (linked with -E, see
// nsenter_linux.go). It runs before the Go runtime, while the process has
// a single thread, joins the namespaces named in the environment, and then
// jumps to the Go runtime's own entry point.

#include "textflag.h"

#define SYS_close 3
#define SYS_ioctl 16
#define SYS_write 1
#define SYS_setresuid 117
#define SYS_setresgid 119
#define SYS_unshare 272
#define SYS_setns 308
#define SYS_exit_group 231
#define NS_GET_NSTYPE 0xb703
#define CLONE_NEWUSER 0x10000000

DATA nsenterKey<>+0(SB)/8, $"_BERTH_N"
DATA nsenterKey<>+8(SB)/8, $"SENTER=\x00"
GLOBL nsenterKey<>(SB), RODATA, $16

DATA unshareKey<>+0(SB)/8, $"_BERTH_U"
DATA unshareKey<>+8(SB)/8, $"NSHARE=\x00"
GLOBL unshareKey<>(SB), RODATA, $16

DATA failMsg<>+0(SB)/8, $"berth ns"
DATA failMsg<>+8(SB)/8, $"enter: f"
DATA failMsg<>+16(SB)/8, $"ailed to"
DATA failMsg<>+24(SB)/8, $" join a "
DATA failMsg<>+32(SB)/8, $"namespac"
DATA failMsg<>+40(SB)/8, $"e\n\x00\x00\x00\x00\x00\x00"
GLOBL failMsg<>(SB), RODATA, $48

// func entry()
TEXT ·entry(SB),NOSPLIT|NOFRAME,$0
	// At entry SP points at argc, followed by argv[], NULL, envp[], NULL.
	MOVQ 0(SP), R12
	LEAQ 16(SP)(R12*8), R13 // envp

	// Find the two variables. R14: _BERTH_NSENTER value, R15: _BERTH_UNSHARE value.
	XORQ R14, R14
	XORQ R15, R15
scan:
	MOVQ 0(R13), SI
	TESTQ SI, SI
	JZ scanned
	LEAQ nsenterKey<>(SB), DI
	CALL prefix<>(SB)
	TESTQ AX, AX
	JZ notns
	MOVB $'x', 0(SI) // hide it from the Go runtime and from children
	LEAQ 15(SI), R14
notns:
	LEAQ unshareKey<>(SB), DI
	CALL prefix<>(SB)
	TESTQ AX, AX
	JZ next
	MOVB $'x', 0(SI)
	LEAQ 15(SI), R15
next:
	ADDQ $8, R13
	JMP scan

scanned:
	TESTQ R14, R14
	JZ unshare
	// Parse "fd,fd,..." and join each, in order.
	XORQ BX, BX // the number being parsed
parse:
	MOVBQZX 0(R14), AX
	CMPQ AX, $'0'
	JB delim
	CMPQ AX, $'9'
	JA delim
	IMULQ $10, BX
	SUBQ $'0', AX
	ADDQ AX, BX
	INCQ R14
	JMP parse
delim:
	MOVQ AX, R12 // the delimiter: ',' or NUL
	// type = ioctl(fd, NS_GET_NSTYPE)
	MOVQ $SYS_ioctl, AX
	MOVQ BX, DI
	MOVQ $NS_GET_NSTYPE, SI
	XORQ DX, DX
	SYSCALL
	MOVQ AX, R13
	// setns(fd, 0)
	MOVQ $SYS_setns, AX
	MOVQ BX, DI
	XORQ SI, SI
	SYSCALL
	CMPQ AX, $0
	JNE fail
	// In a joined user namespace our host ids are unmapped: become its root.
	CMPQ R13, $CLONE_NEWUSER
	JNE closefd
	MOVQ $SYS_setresgid, AX
	XORQ DI, DI
	XORQ SI, SI
	XORQ DX, DX
	SYSCALL
	CMPQ AX, $0
	JNE fail
	MOVQ $SYS_setresuid, AX
	XORQ DI, DI
	XORQ SI, SI
	XORQ DX, DX
	SYSCALL
	CMPQ AX, $0
	JNE fail
closefd:
	MOVQ $SYS_close, AX
	MOVQ BX, DI
	SYSCALL
	XORQ BX, BX
	CMPQ R12, $','
	JNE unshare
	INCQ R14
	JMP parse

unshare:
	TESTQ R15, R15
	JZ start
	XORQ BX, BX
uparse:
	MOVBQZX 0(R15), AX
	CMPQ AX, $'0'
	JB udone
	CMPQ AX, $'9'
	JA udone
	IMULQ $10, BX
	SUBQ $'0', AX
	ADDQ AX, BX
	INCQ R15
	JMP uparse
udone:
	MOVQ $SYS_unshare, AX
	MOVQ BX, DI
	SYSCALL
	CMPQ AX, $0
	JNE fail

start:
	JMP _rt0_amd64_linux(SB)

fail:
	MOVQ $SYS_write, AX
	MOVQ $2, DI
	LEAQ failMsg<>(SB), SI
	MOVQ $42, DX
	SYSCALL
	MOVQ $SYS_exit_group, AX
	MOVQ $125, DI
	SYSCALL
	JMP fail

// prefix reports in AX whether the NUL-terminated string at SI starts with
// the NUL-terminated key at DI. It uses only AX, CX, DX.
TEXT prefix<>(SB),NOSPLIT|NOFRAME,$0
	XORQ CX, CX
ploop:
	MOVBQZX 0(DI)(CX*1), DX
	TESTQ DX, DX
	JZ pmatch
	MOVBQZX 0(SI)(CX*1), AX
	CMPQ AX, DX
	JNE pnomatch
	INCQ CX
	JMP ploop
pmatch:
	MOVQ $1, AX
	RET
pnomatch:
	XORQ AX, AX
	RET
