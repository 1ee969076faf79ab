// Package timing prints stage lines for BERTH_TIMING=1: one line on stderr
// per step, stamped with the monotonic clock (so that the lines of the CLI,
// berth-monitor and berth-runtime, separate processes writing to the same
// stderr, line up) and with the time since this process started. It is how
// the numbers of the benchmarks in bench/ are broken down. When the
// variable is unset a Mark costs one branch.
//
// No fmt: berth-monitor stays resident for a container's whole life and
// keeps its footprint small (internal/monitor's package doc).
package timing

import (
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

var (
	// On is whether BERTH_TIMING is set; callers test it before building
	// a costly stage name.
	On   = os.Getenv("BERTH_TIMING") != ""
	base = time.Now()
)

// Mark prints "[<monotonic ms> +<ms since start> pid N] who: stage".
func Mark(who, stage string) {
	if !On {
		return
	}
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	ms := float64(ts.Sec%1000)*1000 + float64(ts.Nsec)/1e6
	line := "[" + strconv.FormatFloat(ms, 'f', 2, 64) + "ms +" +
		strconv.FormatFloat(float64(time.Since(base).Microseconds())/1000, 'f', 2, 64) +
		"ms pid " + strconv.Itoa(os.Getpid()) + "] " + who + ": " + stage + "\n"
	_, _ = os.Stderr.WriteString(line)
}
