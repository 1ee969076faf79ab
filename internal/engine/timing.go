package engine

import (
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// Stage timing: BERTH_TIMING=1 prints a line on stderr at each step of
// create, start, wait and remove, with the monotonic clock so the lines of
// the CLI, berth-monitor (which then writes to the CLI's stderr) and
// berth-runtime (internal/runtime/trace.go) line up. It is how the numbers
// in bench/run are broken down; it costs one getenv when off.
var (
	timing     = os.Getenv("BERTH_TIMING") != ""
	timingBase = time.Now()
)

// Mark records a stage for BERTH_TIMING (the CLI marks its own stages).
func Mark(stage string) {
	if !timing {
		return
	}
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	ms := float64(ts.Sec%1000)*1000 + float64(ts.Nsec)/1e6
	line := "[" + strconv.FormatFloat(ms, 'f', 2, 64) + "ms +" +
		strconv.FormatFloat(float64(time.Since(timingBase).Microseconds())/1000, 'f', 2, 64) +
		"ms pid " + strconv.Itoa(os.Getpid()) + "] berth: " + stage + "\n"
	_, _ = os.Stderr.WriteString(line)
}
