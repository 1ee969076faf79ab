package seccomp

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// childEnv makes the test binary act as a filtered child: seccomp filters
// cannot be removed, so each one is loaded in a fresh process.
const childEnv = "BERTH_SECCOMP_TEST_CHILD"

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		if err := runChild(mode); err != nil {
			fmt.Fprintf(os.Stderr, "child %s: %v\n", mode, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// goEssentials are syscalls the Go runtime may make on the filtered thread
// between Load and exit (signal delivery, scheduling, memory, exit).
var goEssentials = []string{
	"exit", "exit_group", "write", "futex", "rt_sigprocmask", "rt_sigreturn", "sigaltstack",
	"sched_yield", "nanosleep", "mmap", "munmap", "madvise", "getpid", "gettid", "tgkill",
	"clone", "clock_gettime", "epoll_pwait", "read", "close", "rt_sigaction",
}

func loadForTest(s *specs.LinuxSeccomp) error {
	prog, err := Compile(s)
	if err != nil {
		return err
	}
	// The kernel accepts a filter from an unprivileged thread only once it
	// can no longer gain privileges; root would not need this, but the
	// runtime sets it for containers anyway.
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("PR_SET_NO_NEW_PRIVS: %w", err)
	}
	return Load(prog, s.Flags)
}

func runChild(mode string) error {
	runtime.LockOSThread() // never unlocked: the thread dies with the process
	switch mode {
	case "errno":
		err := loadForTest(&specs.LinuxSeccomp{
			DefaultAction: specs.ActAllow,
			Syscalls: []specs.LinuxSyscall{
				{Names: []string{"getcwd"}, Action: specs.ActErrno, ErrnoRet: uptr(uint(unix.EXFULL))},
				{Names: []string{"mkdirat"}, Action: specs.ActErrno, ErrnoRet: uptr(uint(unix.ENOSYS))},
				{Names: []string{"umask"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpEqualTo, Value: 0o77}}},
				{Names: []string{"getpriority"}, Action: specs.ActErrno, ErrnoRet: uptr(uint(unix.EDOM)), Args: []specs.LinuxSeccompArg{
					{Index: 0, Op: specs.OpEqualTo, Value: unix.PRIO_USER},
					{Index: 1, Op: specs.OpGreaterThan, Value: 0x1_0000_0000},
				}},
			},
			Flags: []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog},
		})
		if err != nil {
			return err
		}
		buf := make([]byte, 4096)
		if _, err := unix.Getcwd(buf); err != unix.EXFULL {
			return fmt.Errorf("getcwd: got %v, want EXFULL", err)
		}
		if err := unix.Mkdirat(unix.AT_FDCWD, filepath.Join(os.TempDir(), "never"), 0o755); err != unix.ENOSYS {
			return fmt.Errorf("mkdirat: got %v, want ENOSYS", err)
		}
		var uts unix.Utsname
		if err := unix.Uname(&uts); err != nil {
			return fmt.Errorf("uname: %v", err)
		}
		if _, _, e := unix.RawSyscall(unix.SYS_UMASK, 0o22, 0, 0); e != 0 {
			return fmt.Errorf("umask(022): %v", e)
		}
		if _, _, e := unix.RawSyscall(unix.SYS_UMASK, 0o77, 0, 0); e != unix.EPERM {
			return fmt.Errorf("umask(077): got %v, want EPERM", e)
		}
		// Only the 64-bit comparison on arg1 tells these two apart.
		if _, _, e := unix.RawSyscall(unix.SYS_GETPRIORITY, unix.PRIO_USER, 0x1_0000_0001, 0); e != unix.EDOM {
			return fmt.Errorf("getpriority(PRIO_USER, 2^32+1): got %v, want EDOM", e)
		}
		if _, _, e := unix.RawSyscall(unix.SYS_GETPRIORITY, unix.PRIO_USER, 0x1, 0); e == unix.EDOM {
			return errors.New("getpriority(PRIO_USER, 1): filtered, want it through")
		}
		return nil
	case "kill":
		if err := loadForTest(&specs.LinuxSeccomp{
			DefaultAction: specs.ActAllow,
			Syscalls:      []specs.LinuxSyscall{{Names: []string{"getppid"}, Action: specs.ActKillProcess}},
		}); err != nil {
			return err
		}
		unix.Getppid()
		return errors.New("getppid returned")
	case "docker-sized":
		s, _ := dockerSizedProfile()
		s.Syscalls = append(s.Syscalls, specs.LinuxSyscall{Names: goEssentials, Action: specs.ActAllow})
		for i, n := range s.Syscalls[0].Names {
			if n == "getcwd" {
				s.Syscalls[0].Names = append(s.Syscalls[0].Names[:i:i], s.Syscalls[0].Names[i+1:]...)
				break
			}
		}
		if err := loadForTest(s); err != nil {
			return err
		}
		buf := make([]byte, 4096)
		if _, err := unix.Getcwd(buf); err != unix.EPERM {
			return fmt.Errorf("getcwd: got %v, want EPERM (defaultErrnoRet 1)", err)
		}
		if _, err := unix.Getcwd(buf); err != unix.EPERM {
			return fmt.Errorf("getcwd: got %v, want EPERM (defaultErrnoRet 1)", err)
		}
		if _, _, e := unix.RawSyscall(unix.SYS_CLONE3, 0, 0, 0); e != unix.ENOSYS {
			return fmt.Errorf("clone3: got %v, want ENOSYS", e)
		}
		return nil
	}
	return fmt.Errorf("unknown mode %q", mode)
}

func runChildProcess(t *testing.T, mode string) (*os.ProcessState, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+mode)
	out, err := cmd.CombinedOutput()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		t.Fatalf("run child: %v", err)
	}
	return cmd.ProcessState, string(out)
}

// TestLoadInKernel loads compiled filters in child processes and checks the
// kernel enforces them the way the BPF VM tests say it should.
func TestLoadInKernel(t *testing.T) {
	for _, mode := range []string{"errno", "docker-sized"} {
		t.Run(mode, func(t *testing.T) {
			ps, out := runChildProcess(t, mode)
			if !ps.Success() {
				t.Fatalf("child %s: %v\n%s", mode, ps, out)
			}
		})
	}
	t.Run("kill", func(t *testing.T) {
		ps, out := runChildProcess(t, "kill")
		ws := ps.Sys().(syscall.WaitStatus)
		if !ws.Signaled() || ws.Signal() != unix.SIGSYS {
			t.Fatalf("child: %v, want killed by SIGSYS\n%s", ps, out)
		}
	})
}

func TestLoadRejectsBadInput(t *testing.T) {
	if err := Load(nil, nil); err == nil {
		t.Error("Load(nil): no error")
	}
	prog := []unix.SockFilter{stmt(retK, retAllow)}
	if err := Load(prog, []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_BOGUS"}); err == nil {
		t.Error("Load with unknown flag: no error")
	}
}
