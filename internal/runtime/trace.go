package runtime

import (
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Stage timing for startup work: BERTH_TIMING=1 prints how long each step
// of create/start/delete took, on stderr. It is how the numbers in
// bench/runtime-startup are broken down.
var (
	timing     = os.Getenv("BERTH_TIMING") != ""
	timingBase = time.Now()
)

func mark(stage string) {
	if timing {
		// Monotonic clock, so the parent's and the init's lines line up.
		var ts unix.Timespec
		_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
		ms := float64(ts.Sec%1000)*1000 + float64(ts.Nsec)/1e6
		fmt.Fprintf(os.Stderr, "[%6.2fms +%6.2fms pid %d] %s\n", ms, float64(time.Since(timingBase).Microseconds())/1000, os.Getpid(), stage)
	}
}

// Mark records a stage for BERTH_TIMING from outside the package.
func Mark(stage string) { mark(stage) }
