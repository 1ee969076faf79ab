package runtime

import "github.com/berth-dev/berth/internal/timing"

// mark records a step of create/start/delete for BERTH_TIMING
// (internal/timing); it is how bench/runtime-startup's numbers are broken
// down.
func mark(stage string) { timing.Mark("runtime", stage) }

// Mark records a stage for BERTH_TIMING from outside the package.
func Mark(stage string) { mark(stage) }
