// Package seccomp compiles the OCI seccomp section into a classic BPF program
// and loads it into the kernel. It is written in Go rather than bound to
// libseccomp so berth-runtime stays a static binary with no C dependency in
// the security path.
package seccomp
