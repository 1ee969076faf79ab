//go:build !linux

package content

import "os"

// startWriteback is a Linux hint (sync_file_range); elsewhere Commit's fsync
// does all the writing.
func startWriteback(*os.File, int64, int64) {}

// preallocate is a Linux hint (fallocate); elsewhere writes allocate.
func preallocate(*os.File, int64) {}
