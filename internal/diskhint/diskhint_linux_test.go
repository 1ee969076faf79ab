package diskhint

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestPreallocate checks the reservation on the test's own file system:
// blocks past the end, the size untouched, and the bounds.
func TestPreallocate(t *testing.T) {
	tests := []struct {
		name       string
		n          int64
		wantBlocks int64 // at least, in bytes; 0: none
	}{
		{"below the minimum", MinPrealloc - 1, 0},
		{"reserved", 4 << 20, 4 << 20},
		{"capped", MaxPrealloc * 4, MaxPrealloc},
	}
	// Preallocate ignores errors; the test asks the file system itself
	// whether it can reserve blocks, so that a hint that silently does
	// nothing fails here instead of skipping.
	probe, err := os.Create(filepath.Join(t.TempDir(), "probe"))
	if err != nil {
		t.Fatal(err)
	}
	err = unix.Fallocate(int(probe.Fd()), unix.FALLOC_FL_KEEP_SIZE, 0, MinPrealloc)
	probe.Close()
	if err == unix.EOPNOTSUPP || err == unix.ENOSYS {
		t.Skipf("the file system of %s cannot preallocate: %v", probe.Name(), err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := os.Create(filepath.Join(t.TempDir(), "f"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			Preallocate(int(f.Fd()), tc.n)
			var st unix.Stat_t
			if err := unix.Fstat(int(f.Fd()), &st); err != nil {
				t.Fatal(err)
			}
			if st.Size != 0 {
				t.Errorf("size = %d, want 0 (KEEP_SIZE)", st.Size)
			}
			got := st.Blocks * 512
			switch {
			case tc.wantBlocks == 0 && got != 0:
				t.Errorf("reserved %d bytes below the minimum", got)
			case tc.wantBlocks > 0 && (got < tc.wantBlocks || got > tc.wantBlocks+(1<<20)):
				t.Errorf("reserved %d bytes, want %d", got, tc.wantBlocks)
			}
		})
	}
}
