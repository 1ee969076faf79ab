//go:build !linux

package diskhint

// Preallocate is a Linux hint (fallocate); elsewhere writes allocate.
func Preallocate(int, int64) {}

// StartWriteback is a Linux hint (sync_file_range); elsewhere the final
// sync does all the writing.
func StartWriteback(int, int64, int64) {}
