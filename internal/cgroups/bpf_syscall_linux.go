package cgroups

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The bpf(2) commands the device filter needs, on raw syscalls. Each takes
// a union bpf_attr (include/uapi/linux/bpf.h), declared below as the one
// member the command reads. The kernel copies the size it is given and
// treats the rest of the union as zero, so each struct stops after the last
// field berth sets. Fields keep the kernel's offsets: __aligned_u64 members
// sit at multiples of 8, with explicit padding, so the layout is the same
// where Go aligns uint64 to 4 bytes (386, arm). Pointers are passed as
// uint64 addresses of pinned Go memory (see bpfAddr).
//
// File descriptors the kernel returns for BPF objects are always
// close-on-exec.

// bpfProgLoadAttr is the BPF_PROG_LOAD member of union bpf_attr, up to
// prog_name.
type bpfProgLoadAttr struct {
	progType    uint32
	insnCnt     uint32
	insns       uint64 // const struct bpf_insn *
	license     uint64 // const char *
	logLevel    uint32
	logSize     uint32
	logBuf      uint64 // char *
	kernVersion uint32
	progFlags   uint32
	progName    [unix.BPF_OBJ_NAME_LEN]byte
}

// bpfProgQueryAttr is the BPF_PROG_QUERY member, up to prog_cnt.
type bpfProgQueryAttr struct {
	targetFd    uint32
	attachType  uint32
	queryFlags  uint32
	attachFlags uint32
	progIDs     uint64 // __u32 *
	progCnt     uint32
	_           uint32
}

// bpfProgAttachAttr is the BPF_PROG_ATTACH and BPF_PROG_DETACH member, up
// to attach_flags.
type bpfProgAttachAttr struct {
	targetFd    uint32
	attachBpfFd uint32
	attachType  uint32
	attachFlags uint32
}

// bpfGetIDAttr is the BPF_*_GET_FD_BY_ID member, up to open_flags.
type bpfGetIDAttr struct {
	id        uint32
	nextID    uint32
	openFlags uint32
}

// bpfCgroupMaxProgs is BPF_CGROUP_MAX_PROGS (kernel/bpf/cgroup.c):
// no more programs of one attach type can be attached to a cgroup.
const bpfCgroupMaxProgs = 64

// bpf issues one bpf(2) command. attr must point to one of the attr structs
// above; the conversion in the Syscall call keeps it alive until the
// kernel returns.
func bpf(cmd int, attr unsafe.Pointer, size uintptr) (int, error) {
	fd, _, errno := unix.Syscall(unix.SYS_BPF, uintptr(cmd), uintptr(attr), size)
	if errno != 0 {
		return -1, errno
	}
	return int(fd), nil
}

// bpfAddr returns the address of p for a bpf_attr field, pinning p so that
// it neither moves (Pin makes it escape to the heap, which never moves) nor
// is freed while the kernel may still read or write it.
func bpfAddr[T any](pin *runtime.Pinner, p *T) uint64 {
	pin.Pin(p)
	return uint64(uintptr(unsafe.Pointer(p)))
}

// bpfLoadCgroupDevice loads insns as a BPF_PROG_TYPE_CGROUP_DEVICE program
// and returns its file descriptor. If the verifier rejects the program, the
// load is repeated with a log buffer and the error carries the verifier's
// explanation.
func bpfLoadCgroupDevice(insns []bpfInsn, license, name string) (int, error) {
	if len(insns) == 0 {
		return -1, errors.New("bpf: empty program")
	}
	var pin runtime.Pinner
	defer pin.Unpin()
	lic := append([]byte(license), 0)
	attr := bpfProgLoadAttr{
		progType: unix.BPF_PROG_TYPE_CGROUP_DEVICE,
		insnCnt:  uint32(len(insns)),
		insns:    bpfAddr(&pin, &insns[0]),
		license:  bpfAddr(&pin, &lic[0]),
	}
	copy(attr.progName[:len(attr.progName)-1], name)
	fd, err := bpfProgLoad(&attr)
	if err == nil {
		return fd, nil
	}
	// Loading again, with the verifier's log, costs nothing on the path that
	// works and turns "permission denied" into the instruction at fault.
	log := make([]byte, 64<<10)
	attr.logLevel = 1
	attr.logSize = uint32(len(log))
	attr.logBuf = bpfAddr(&pin, &log[0])
	if fd, err := bpfProgLoad(&attr); err == nil {
		return fd, nil // the first failure was transient
	}
	if msg := bytes.TrimSpace(log[:max(bytes.IndexByte(log, 0), 0)]); len(msg) > 0 {
		return -1, fmt.Errorf("%w; verifier log:\n%s", err, msg)
	}
	return -1, err
}

func bpfProgLoad(attr *bpfProgLoadAttr) (int, error) {
	for {
		fd, err := bpf(unix.BPF_PROG_LOAD, unsafe.Pointer(attr), unsafe.Sizeof(*attr))
		// The verifier gives up with EAGAIN when a signal is pending, and Go
		// preempts goroutines with SIGURG, so a load can fail for no reason
		// of its own (kernel/bpf/verifier.c, do_check).
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return -1, os.NewSyscallError("bpf(BPF_PROG_LOAD)", err)
		}
		return fd, nil
	}
}

// bpfQueryCgroupDevice lists the IDs of the BPF_CGROUP_DEVICE programs
// attached to the cgroup directory open at cgroupFd itself (not those
// inherited from ancestors).
func bpfQueryCgroupDevice(cgroupFd int) ([]uint32, error) {
	var pin runtime.Pinner
	defer pin.Unpin()
	ids := new([bpfCgroupMaxProgs]uint32)
	attr := bpfProgQueryAttr{
		targetFd:   uint32(cgroupFd),
		attachType: unix.BPF_CGROUP_DEVICE,
		progIDs:    bpfAddr(&pin, ids),
		progCnt:    uint32(len(ids)),
	}
	if _, err := bpf(unix.BPF_PROG_QUERY, unsafe.Pointer(&attr), unsafe.Sizeof(attr)); err != nil {
		return nil, os.NewSyscallError("bpf(BPF_PROG_QUERY)", err)
	}
	return ids[:min(attr.progCnt, uint32(len(ids)))], nil
}

// bpfProgFDByID opens the loaded program with the given ID.
func bpfProgFDByID(id uint32) (int, error) {
	attr := bpfGetIDAttr{id: id}
	fd, err := bpf(unix.BPF_PROG_GET_FD_BY_ID, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	if err != nil {
		return -1, os.NewSyscallError("bpf(BPF_PROG_GET_FD_BY_ID)", err)
	}
	return fd, nil
}

// bpfAttachCgroupDevice attaches program progFd to the cgroup at cgroupFd
// with BPF_F_ALLOW_MULTI.
func bpfAttachCgroupDevice(cgroupFd, progFd int) error {
	attr := bpfProgAttachAttr{
		targetFd:    uint32(cgroupFd),
		attachBpfFd: uint32(progFd),
		attachType:  unix.BPF_CGROUP_DEVICE,
		attachFlags: unix.BPF_F_ALLOW_MULTI,
	}
	if _, err := bpf(unix.BPF_PROG_ATTACH, unsafe.Pointer(&attr), unsafe.Sizeof(attr)); err != nil {
		return os.NewSyscallError("bpf(BPF_PROG_ATTACH)", err)
	}
	return nil
}

// bpfDetachCgroupDevice detaches program progFd from the cgroup at
// cgroupFd. Naming the program is required for BPF_F_ALLOW_MULTI
// attachments.
func bpfDetachCgroupDevice(cgroupFd, progFd int) error {
	attr := bpfProgAttachAttr{
		targetFd:    uint32(cgroupFd),
		attachBpfFd: uint32(progFd),
		attachType:  unix.BPF_CGROUP_DEVICE,
	}
	if _, err := bpf(unix.BPF_PROG_DETACH, unsafe.Pointer(&attr), unsafe.Sizeof(attr)); err != nil {
		return os.NewSyscallError("bpf(BPF_PROG_DETACH)", err)
	}
	return nil
}
