package monitor

import (
	"bufio"
	"os"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// trimResident drops the page-table entries of the monitor's own read-only
// file mappings (its code and read-only data) once the container runs.
//
// Why: the kernel maps file pages around each fault (fault-around, 64 KiB),
// so starting up leaves nearly the whole binary mapped, although an idle
// monitor touches a few dozen pages of it: a wait in the poller and a
// forced GC every two minutes. The pages stay in the page cache, shared by
// every monitor; dropping our mappings only stops counting them against
// this process, and whatever is used again faults back in from the cache.
// Only read-only mappings are dropped: MADV_DONTNEED on a written private
// mapping would discard its data.
func trimResident() {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// start-end perms offset dev inode path
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[5] != exe || fields[1][1] == 'w' {
			continue
		}
		lo, hi, ok := strings.Cut(fields[0], "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		// The raw call: these addresses are not Go memory.
		_, _, _ = unix.Syscall(unix.SYS_MADVISE, uintptr(start), uintptr(end-start), unix.MADV_RANDOM)
		_, _, _ = unix.Syscall(unix.SYS_MADVISE, uintptr(start), uintptr(end-start), unix.MADV_DONTNEED)
	}
}

// gcSentinel's finalizer runs once per GC cycle that finds it unreachable,
// which is every cycle since each run allocates the next one.
type gcSentinel struct{ _ [32]byte } // not a tiny allocation: those may share a finalizer-less block

// trimAfterEachGC re-trims after every garbage collection: an idle monitor
// still collects every two minutes (the runtime's forced GC), and marking
// walks the binary's pclntab and type data, mapping them back in.
func trimAfterEachGC() {
	runtime.SetFinalizer(new(gcSentinel), func(*gcSentinel) {
		trimResident()
		trimAfterEachGC()
	})
}
