// Package mountinfo reads /proc/self/mountinfo for the few things berth
// asks of it: which mount points lie at or below a directory, and
// unmounting them deepest first. It imports nothing beyond the standard
// library and x/sys/unix, so that berth-monitor, which stays resident for
// a container's life, can use it without growing. Linux only.
package mountinfo
