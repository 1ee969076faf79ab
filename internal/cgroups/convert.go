package cgroups

import (
	"errors"
	"fmt"
)

// sharesToWeight converts v1 cpu.shares [2, 262144] to v2 cpu.weight
// [1, 10000] with runc's linear mapping, so a spec written for v1 gives the
// same relative weights on v2 (the default 1024 shares maps to 39, not 100:
// that is runc's behaviour and what users of runc-based engines observe).
// 0 means "unset" and stays 0.
func sharesToWeight(shares uint64) uint64 {
	if shares == 0 {
		return 0
	}
	shares = min(max(shares, 2), 262144)
	return 1 + ((shares-2)*9999)/262142
}

// blkioWeightToIOWeight converts a v1 blkio weight [10, 1000] to a v2
// io.weight [1, 10000]. 0 means "unset".
func blkioWeightToIOWeight(w uint64) uint64 {
	if w == 0 {
		return 0
	}
	w = min(max(w, 10), 1000)
	return 1 + (w-10)*9999/990
}

// swapToV2 converts the OCI (and v1) swap value, which is the limit of
// memory+swap, to v2's memory.swap.max, which limits swap alone. memory
// and swap use the OCI encoding: 0 unset, -1 unlimited. The result uses
// the same encoding (0: leave memory.swap.max alone, -1: "max").
func swapToV2(swap, memory int64) (int64, error) {
	// As on v1: unlimited memory with swap unset means both unlimited.
	if memory == -1 && swap == 0 {
		return -1, nil
	}
	if swap == -1 || swap == 0 {
		return swap, nil
	}
	if memory == 0 || memory == -1 {
		return 0, errors.New("cannot set a swap limit without a memory limit")
	}
	if memory < 0 {
		return 0, fmt.Errorf("invalid memory limit %d", memory)
	}
	if swap < memory {
		return 0, fmt.Errorf("memory+swap limit %d is lower than the memory limit %d", swap, memory)
	}
	return swap - memory, nil
}
