package runtime

import (
	"fmt"
	"os"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/linux/caps"
	"github.com/berth-dev/berth/internal/linux/seccomp"
)

// execProcess turns the calling thread into the workload: credentials,
// capabilities, no_new_privs and seccomp, then execve. Everything here is
// per-thread state, which is why the init runs on one locked thread.
//
// The order is the kernel's, not a choice:
//   - the bounding set can only be reduced while we hold CAP_SETPCAP, so it
//     goes first;
//   - changing uid from 0 clears the permitted set unless PR_SET_KEEPCAPS is
//     set, so credentials are switched with it set, then the sets applied;
//   - loading seccomp needs CAP_SYS_ADMIN unless no_new_privs is set, so
//     without no_new_privs the filter is loaded first (while we are still
//     privileged), and with it, last — so the filter never has to allow the
//     runtime's own setup syscalls.
func execProcess(p *specs.Process, path string, preserveFds int, l *specs.Linux) error {
	var filter []unix.SockFilter
	var sc *specs.LinuxSeccomp
	if l != nil && l.Seccomp != nil {
		sc = l.Seccomp
		var err error
		if filter, err = seccomp.Compile(sc); err != nil {
			return fmt.Errorf("seccomp: %w", err)
		}
	}
	if filter != nil && !p.NoNewPrivileges {
		if err := seccomp.Load(filter, sc.Flags); err != nil {
			return fmt.Errorf("load seccomp filter: %w", err)
		}
	}
	if p.Capabilities != nil {
		if err := caps.DropBounding(p.Capabilities); err != nil {
			return err
		}
	}
	if err := setUser(&p.User, p.Capabilities != nil); err != nil {
		return err
	}
	if p.Capabilities != nil {
		if err := caps.ApplySets(p.Capabilities); err != nil {
			return err
		}
	}
	if p.Cwd != "" {
		if err := unix.Chdir(p.Cwd); err != nil {
			return &os.PathError{Op: "chdir to cwd", Path: p.Cwd, Err: err}
		}
	}
	if p.User.Umask != nil {
		unix.Umask(int(*p.User.Umask))
	}
	if p.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("set no_new_privs: %w", err)
		}
	}
	if err := closeExtraFds(3 + preserveFds); err != nil {
		return err
	}
	if filter != nil && p.NoNewPrivileges {
		if err := seccomp.Load(filter, sc.Flags); err != nil {
			return fmt.Errorf("load seccomp filter: %w", err)
		}
	}
	env := p.Env
	if env == nil {
		env = []string{}
	}
	err := unix.Exec(path, p.Args, env)
	return &os.PathError{Op: "exec", Path: path, Err: err}
}

// setUser switches the thread's credentials. These are raw per-thread
// syscalls, not syscall.Setresuid, which changes every thread of the process
// (a round trip to each thread): only this thread survives execve, so only
// it needs them.
//
// With no capabilities section, the kernel's rules apply unchanged: a
// non-root user ends with no capabilities.
func setUser(u *specs.User, keepCaps bool) error {
	if keepCaps {
		if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("keepcaps: %w", err)
		}
	}
	groups := make([]int, 0, len(u.AdditionalGids))
	for _, g := range u.AdditionalGids {
		groups = append(groups, int(g))
	}
	if err := unix.Setgroups(groups); err != nil {
		// Without setgroups permission (a user namespace with setgroups
		// denied) only an empty request can be skipped safely.
		if len(groups) > 0 {
			return fmt.Errorf("setgroups %v: %w", groups, err)
		}
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(u.GID), uintptr(u.GID), uintptr(u.GID)); e != 0 {
		return fmt.Errorf("setgid %d: %w", u.GID, e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(u.UID), uintptr(u.UID), uintptr(u.UID)); e != 0 {
		return fmt.Errorf("setuid %d: %w", u.UID, e)
	}
	if keepCaps {
		if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 0, 0, 0, 0); err != nil {
			return fmt.Errorf("keepcaps: %w", err)
		}
	}
	return nil
}

// closeExtraFds marks every descriptor from min up close-on-exec, so no
// host descriptor the runtime inherited or opened reaches the workload.
func closeExtraFds(min int) error {
	if err := unix.CloseRange(uint(min), ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err == nil {
		return nil
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return err
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err == nil && fd >= min {
			unix.CloseOnExec(fd)
		}
	}
	return nil
}
