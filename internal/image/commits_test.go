package image

import (
	"slices"
	"testing"

	"github.com/berth-dev/berth/internal/snapshot"
	"github.com/opencontainers/go-digest"
)

func TestCommitQueue(t *testing.T) {
	chain := []digest.Digest{digest.FromString("0"), digest.FromString("1"), digest.FromString("2"), digest.FromString("3")}
	link := func(i int) snapshot.ChainLink {
		l := snapshot.ChainLink{Name: chain[i].String(), Key: "k" + string(rune('0'+i))}
		if i > 0 {
			l.Parent = chain[i-1].String()
		}
		return l
	}
	links := func(is ...int) []snapshot.ChainLink {
		var ls []snapshot.ChainLink
		for _, i := range is {
			ls = append(ls, link(i))
		}
		return ls
	}
	type step struct {
		ready  []int // layers verified before this take
		take   int
		want   []snapshot.ChainLink
		settle int // links the batch committed, -1: all
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"upper layers ride along with the lowest", []step{
			{ready: []int{2, 1, 0}, take: 0, want: links(0, 1, 2), settle: -1},
			{take: 1},
			{take: 2},
			{ready: []int{3}, take: 3, want: links(3), settle: -1},
		}},
		{"a gap stops the batch", []step{
			{ready: []int{0, 2, 3}, take: 0, want: links(0), settle: -1},
			{ready: []int{1}, take: 1, want: links(1, 2, 3), settle: -1},
		}},
		{"links after a failure commit again on their turn", []step{
			{ready: []int{0, 1, 2}, take: 0, want: links(0, 1, 2), settle: 1},
			{take: 1, want: links(1, 2), settle: -1},
			{take: 2},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := newCommitQueue(chain)
			for _, s := range tc.steps {
				for _, i := range s.ready {
					q.ready(i, "k"+string(rune('0'+i)))
				}
				got := q.take(s.take)
				if !slices.Equal(got, s.want) {
					t.Fatalf("take(%d) = %+v, want %+v", s.take, got, s.want)
				}
				if n := s.settle; len(got) > 0 {
					if n < 0 {
						n = len(got)
					}
					q.settle(s.take, n, len(got))
				}
			}
		})
	}
}
