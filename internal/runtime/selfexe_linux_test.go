package runtime

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/testutil"
)

// TestBoundExeConcurrent: first runs of a binary at the same moment make
// one read-only bind mount between them, not one stacked on another
// (which would make the binary impossible to delete).
func TestBoundExeConcurrent(t *testing.T) {
	testutil.RequiresRoot(t)
	var self unix.Stat_t
	if err := unix.Stat("/proc/self/exe", &self); err != nil {
		t.Fatal(err)
	}
	name := filepath.Join(exeCacheDir, fmt.Sprintf("%x-%x-%x", self.Dev, self.Ino, self.Ctim.Nano()))
	cleanup := func() {
		for unix.Unmount(name, unix.MNT_DETACH) == nil {
		}
		os.Remove(name)
	}
	cleanup()
	t.Cleanup(cleanup)

	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, err := boundExe()
			if err != nil {
				errs <- err
				return
			}
			f.Close()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	mounts := 0
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == name {
			mounts++
		}
	}
	if mounts != 1 {
		t.Errorf("%d mounts on %s, want 1", mounts, name)
	}
}
