package runtime

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// selfExe returns a sealed in-memory copy of the running binary, from which
// container processes are started.
//
// A process inside the container can open /proc/PID/exe of a process that
// runs our binary (an init before its execve, or one that a hostile image
// tricks into re-executing /proc/self/exe) and, once that process has gone,
// reopen it for writing: that would overwrite the host's berth-runtime
// (CVE-2019-5736 against runc). A sealed memfd has no writable path back to
// the host file, and its seals forbid writes even through the memfd itself.
func selfExe() (*os.File, error) {
	src, err := os.Open("/proc/self/exe")
	if err != nil {
		return nil, err
	}
	defer src.Close()
	st, err := src.Stat()
	if err != nil {
		return nil, err
	}
	fd, err := unix.MemfdCreate("berth-runtime", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), "memfd:berth-runtime")
	remaining := st.Size()
	for remaining > 0 {
		n, err := unix.Sendfile(fd, int(src.Fd()), nil, int(remaining))
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("copy runtime binary: %w", err)
		}
		if n == 0 {
			break
		}
		remaining -= int64(n)
	}
	const seals = unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals); err != nil {
		f.Close()
		return nil, fmt.Errorf("seal runtime binary copy: %w", err)
	}
	return f, nil
}
