package linux

import "golang.org/x/sys/unix"

// openat2Retries bounds the retries of Openat2 on EAGAIN.
const openat2Retries = 64

// Openat2 is unix.Openat2, retried on EAGAIN: with RESOLVE_IN_ROOT or
// RESOLVE_BENEATH the kernel fails a lookup that a concurrent rename or
// mount anywhere on the host may have raced (it checks the mount and
// rename seqlocks), and openat2(2) tells callers to retry. On a busy host
// (containers starting, layers unpacking) that is no rare event.
func Openat2(dirfd int, path string, how *unix.OpenHow) (int, error) {
	for i := 0; ; i++ {
		fd, err := unix.Openat2(dirfd, path, how)
		if err != unix.EAGAIN || i >= openat2Retries {
			return fd, err
		}
	}
}
