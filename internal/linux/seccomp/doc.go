// Package seccomp compiles the OCI seccomp section into a classic BPF program
// and loads it into the kernel. It is written in Go rather than bound to
// libseccomp so berth-runtime stays a static binary with no C dependency in
// the security path.
//
// # Program shape
//
// The program Compile emits is, in order:
//
//  1. load seccomp_data.arch and dispatch to one section per audit
//     architecture the filter covers; any other architecture gets the "bad
//     arch" action, SECCOMP_RET_KILL_PROCESS. libseccomp's default bad-arch
//     action is SCMP_ACT_KILL (kill the thread); berth kills the process
//     because a multi-threaded program that lost one thread to a syscall it
//     was never allowed to make is in no state to keep running.
//  2. in the x86_64 section, split on __X32_SYSCALL_BIT: x32 numbers go to the
//     x32 section when SCMP_ARCH_X32 is listed, and get the bad-arch action
//     otherwise (x32 and x86_64 share AUDIT_ARCH_X86_64, so the bit is the only
//     thing that tells them apart).
//  3. a binary search over the syscall number. Numbers are grouped into
//     ranges of equal outcome first, so Docker's ~370-name default profile is
//     a tree of ~200 instructions per architecture and any syscall is decided
//     in about log2(ranges) comparisons.
//  4. at a leaf, either a single return, or the syscall's argument rules
//     checked in order (first match wins), then its argument-less rule, then
//     the default action.
//
// # Semantics, following runc + libseccomp where they define them
//
//   - The native architecture is always in the filter (OCI: "by default only
//     the native architecture of the kernel is permitted"); listed
//     architectures of the same family are added (x86 and x32 on amd64, arm
//     on arm64); other listed architectures can never reach the filter and are
//     ignored.
//   - Syscall names the architecture does not have are skipped, as libseccomp
//     and runc do; unknown actions, operators, flags and architectures are
//     errors.
//   - A rule whose action (with its errno) equals the default action is
//     dropped, as runc does (libseccomp refuses such rules).
//   - Argument values are compared as unsigned 64-bit numbers, like
//     libseccomp; several args in one rule are ANDed; several rules for one
//     syscall are ORed, first match wins.
//   - SCMP_ACT_ERRNO and SCMP_ACT_TRACE return errnoRet (default EPERM);
//     defaultErrnoRet does the same for the default action.
//   - Like runc, syscalls numbered above the highest syscall the profile names
//     (per architecture) return ENOSYS instead of the default action, unless
//     the default action is ALLOW or LOG. A profile written before a syscall
//     existed cannot have meant to deny it with EPERM: ENOSYS lets libc fall
//     back (clone3 → clone, faccessat2 → faccessat, …).
//   - SCMP_ACT_NOTIFY (seccomp user notification) is not implemented:
//     Compile returns ErrNotifySupported-wrapped errors for it.
package seccomp
