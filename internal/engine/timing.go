package engine

import "github.com/berth-dev/berth/internal/timing"

// Mark records a stage of create, start, wait or remove for BERTH_TIMING
// (internal/timing); the CLI marks its own stages through it too.
func Mark(stage string) { timing.Mark("berth", stage) }
