package monitor

import (
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// Stage timing: with BERTH_TIMING set the engine hands the monitor its own
// stderr, and the monitor prints a line per step of its start and exit on
// it, with the same monotonic clock format as the engine and the runtime
// (internal/runtime/trace.go). No fmt: see the package doc on memory.
var (
	timing     = os.Getenv("BERTH_TIMING") != ""
	timingBase = time.Now()
)

func mark(stage string) {
	if !timing {
		return
	}
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	ms := float64(ts.Sec%1000)*1000 + float64(ts.Nsec)/1e6
	line := "[" + strconv.FormatFloat(ms, 'f', 2, 64) + "ms +" +
		strconv.FormatFloat(float64(time.Since(timingBase).Microseconds())/1000, 'f', 2, 64) +
		"ms pid " + strconv.Itoa(os.Getpid()) + "] monitor: " + stage + "\n"
	_, _ = os.Stderr.WriteString(line)
}
