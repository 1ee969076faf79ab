package content

import (
	"os"

	"golang.org/x/sys/unix"
)

// startWriteback asks the kernel to start writing [off, off+n) of f to
// disk now, without waiting for it (sync_file_range SYNC_FILE_RANGE_WRITE).
// Dirty pages otherwise sit in memory until the fsync at Commit, which then
// waits for the whole blob; started early, the disk works while the rest
// is still arriving. Only a hint: errors are ignored, Commit's fsync is
// what guarantees durability.
func startWriteback(f *os.File, off, n int64) {
	_ = unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
}
