package cgroups

import "testing"

func TestSharesToWeight(t *testing.T) {
	tests := []struct {
		name   string
		shares uint64
		want   uint64
	}{
		{"unset", 0, 0},
		{"below minimum clamps", 1, 1},
		{"minimum", 2, 1},
		{"default 1024", 1024, 39},
		{"maximum", 262144, 10000},
		{"above maximum clamps", 1 << 20, 10000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sharesToWeight(tt.shares); got != tt.want {
				t.Errorf("sharesToWeight(%d) = %d, want %d", tt.shares, got, tt.want)
			}
		})
	}
}

func TestBlkioWeightToIOWeight(t *testing.T) {
	tests := []struct {
		name string
		in   uint64
		want uint64
	}{
		{"unset", 0, 0},
		{"minimum", 10, 1},
		{"default 500", 500, 4950},
		{"maximum", 1000, 10000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := blkioWeightToIOWeight(tt.in); got != tt.want {
				t.Errorf("blkioWeightToIOWeight(%d) = %d, want %d", tt.in, got, tt.want)
			}
		})
	}
}

func TestSwapToV2(t *testing.T) {
	tests := []struct {
		name         string
		swap, memory int64
		want         int64
		wantErr      bool
	}{
		{"both unset", 0, 0, 0, false},
		{"unlimited memory, swap unset", 0, -1, -1, false},
		{"unlimited swap", -1, 100, -1, false},
		{"swap unset with limit", 0, 100, 0, false},
		{"memory+swap to swap only", 300, 100, 200, false},
		{"no swap at all", 100, 100, 0, false},
		{"swap below memory", 50, 100, 0, true},
		{"swap without memory", 100, 0, 0, true},
		{"swap with unlimited memory", 100, -1, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := swapToV2(tt.swap, tt.memory)
			if (err != nil) != tt.wantErr {
				t.Fatalf("swapToV2(%d, %d) error = %v, wantErr %v", tt.swap, tt.memory, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("swapToV2(%d, %d) = %d, want %d", tt.swap, tt.memory, got, tt.want)
			}
		})
	}
}
