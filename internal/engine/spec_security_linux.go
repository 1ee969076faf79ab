package engine

import "golang.org/x/sys/unix"

// heldCaps reports whether this process has capability c in its bounding set.
func heldCaps() func(int) bool {
	return func(c int) bool {
		v, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(c), 0, 0, 0)
		return err == nil && v == 1
	}
}
