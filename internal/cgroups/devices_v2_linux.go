package cgroups

import (
	"errors"
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// deviceFilterName is the program name bpftool and
// /proc/<pid>/fdinfo show; at most BPF_OBJ_NAME_LEN-1 of [A-Za-z0-9_.].
const deviceFilterName = "berth_devices"

// setDevices enforces the device rules on v2, which has no devices
// controller: access checks run a BPF_PROG_TYPE_CGROUP_DEVICE program
// attached to the cgroup. The program is attached with BPF_F_ALLOW_MULTI,
// the mode systemd and runc use, so it composes with programs on
// ancestors (all must allow) and can be replaced: the new program is
// attached before the old ones are detached, so there is no instant with
// no filter. The attachment lives as long as the cgroup; berth keeps no
// file descriptor.
func (m *v2Manager) setDevices(r *specs.LinuxResources) error {
	if len(r.Devices) == 0 {
		return nil
	}
	insns, err := deviceFilter(r.Devices)
	if err != nil {
		return err
	}
	prog, err := bpfLoadCgroupDevice(insns, deviceFilterLicense, deviceFilterName)
	if err != nil {
		return fmt.Errorf("load device filter: %w", err)
	}
	defer unix.Close(prog)

	fd, err := unix.Open(m.dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", m.dir, err)
	}
	defer unix.Close(fd)

	old, err := bpfQueryCgroupDevice(fd)
	if err != nil {
		return fmt.Errorf("query device filters: %w", err)
	}
	if err := bpfAttachCgroupDevice(fd, prog); err != nil {
		return fmt.Errorf("attach device filter: %w", err)
	}
	var errs []error
	for _, id := range old {
		if err := detachProgram(fd, id); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("detach old device filter: %w", err)
	}
	return nil
}

// detachProgram detaches the device filter with the given ID from the
// cgroup. A program that is already gone (another `update` raced this one
// and detached it first) is not an error: absence is what was wanted.
func detachProgram(cgroupFd int, id uint32) error {
	prog, err := bpfProgFDByID(id)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("program %d: %w", id, err)
	}
	defer unix.Close(prog)
	err = bpfDetachCgroupDevice(cgroupFd, prog)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("program %d: %w", id, err)
	}
	return nil
}
