// Package diskhint gives the kernel the two hints that make writing big
// files cheaper: reserve the blocks first (Preallocate) and start writing
// finished parts out early (StartWriteback). The content store's blobs and
// the files a layer unpacks are written the same way, so both use this
// package. Hints only: nothing depends on them for correctness, and every
// error is ignored (a file system without fallocate or sync_file_range, a
// full disk that the writes themselves will report).
package diskhint

// Preallocation bounds: below MinPrealloc there is nothing to gain (the
// fallocate costs what it saves); MaxPrealloc caps what a size claimed by
// a manifest or tar header, not yet backed by data, can reserve.
const (
	MinPrealloc = 1 << 20
	MaxPrealloc = 256 << 20
)
