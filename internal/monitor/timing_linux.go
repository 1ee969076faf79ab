package monitor

import "github.com/berth-dev/berth/internal/timing"

// mark records a step of the monitor's start and exit for BERTH_TIMING:
// the engine then hands the monitor its own stderr for these lines.
func mark(stage string) { timing.Mark("monitor", stage) }
