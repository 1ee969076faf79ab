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
			case tc.wantBlocks > 0 && got == 0:
				t.Skipf("no blocks reserved: the file system of %s lacks fallocate", f.Name())
			case tc.wantBlocks > 0 && (got < tc.wantBlocks || got > tc.wantBlocks+(1<<20)):
				t.Errorf("reserved %d bytes, want %d", got, tc.wantBlocks)
			}
		})
	}
}
