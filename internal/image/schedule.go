package image

import (
	"cmp"
	"context"
	"slices"
	"sync"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// smallLayer is the compressed size below which a layer is inflated by
// the Go decoder: starting an igzip process costs more than it saves.
const smallLayer = 1 << 20

// slotFree is the compressed size below which a layer takes no download
// slot. Such a layer is a small share of the pull's work, but queued
// behind the big ones (slots go biggest first) it would run last: a
// 1 MiB layer of a few hundred files then unpacked alone at the end of a
// pull for a tenth of a second, and a low layer holds back every commit
// above it, since each commit waits for its parent's.
const slotFree = 4 << 20

// scheduler orders one Fetch's layers: who downloads when (slots), and who
// prepares its snapshot when.
//
// Slots: with overlay whiteouts the biggest layers go first: the pull ends
// when the last layer is unpacked, and a big layer started last would run
// alone at the end (longest job first keeps every slot busy until the end).
// The native snapshotter unpacks in order, so it downloads in order too.
//
// Prepares: every overlay layer prepares its empty snapshot before its
// download, and all of them at once would queue on the snapshot store's
// lock, which waits by polling: the biggest layer could wait a quarter of
// a second for its turn. One at a time, in slot order, each prepare starts
// the moment the one before it ends.
type scheduler struct {
	order    []int           // layer indexes, in the order they get slots
	sem      chan struct{}   // bounds concurrent downloads
	turn     []chan struct{} // turn[i] closes when layer i may download
	slot     []bool          // slot[i]: layer i holds a slot (set before turn[i] closes)
	prepTurn []chan struct{} // prepTurn[i] closes when layer i may prepare
	prepDone []chan struct{} // prepDone[i] closes when layer i has prepared (or needs not)
	prepOnce []sync.Once
}

func newScheduler(layers []ocispec.Descriptor, overlay bool, parallel int) *scheduler {
	n := len(layers)
	sc := &scheduler{
		order:    make([]int, n),
		sem:      make(chan struct{}, parallel),
		turn:     make([]chan struct{}, n),
		slot:     make([]bool, n),
		prepTurn: make([]chan struct{}, n),
		prepDone: make([]chan struct{}, n),
		prepOnce: make([]sync.Once, n),
	}
	for i := range n {
		sc.order[i] = i
		sc.turn[i] = make(chan struct{})
		sc.prepTurn[i] = make(chan struct{})
		sc.prepDone[i] = make(chan struct{})
		sc.slot[i] = layers[i].Size >= slotFree
	}
	if overlay {
		slices.SortStableFunc(sc.order, func(a, b int) int { return cmp.Compare(layers[b].Size, layers[a].Size) })
	}
	return sc
}

// first lists the layers that start at once: those that take no slot and
// the first holders of the slots.
func (sc *scheduler) first() []int {
	var out []int
	slots := cap(sc.sem)
	for _, i := range sc.order {
		if !sc.slot[i] {
			out = append(out, i)
		} else if slots > 0 {
			out = append(out, i)
			slots--
		}
	}
	return out
}

// start runs the dispatchers until every turn is given or ctx ends.
func (sc *scheduler) start(ctx context.Context) {
	go sc.dispatch(ctx)
	go sc.sequencePrepares(ctx)
}

func (sc *scheduler) dispatch(ctx context.Context) {
	for _, i := range sc.order {
		if !sc.slot[i] {
			close(sc.turn[i])
		}
	}
	for _, i := range sc.order {
		if !sc.slot[i] {
			continue
		}
		select {
		case sc.sem <- struct{}{}:
			close(sc.turn[i])
		case <-ctx.Done():
			return
		}
	}
}

func (sc *scheduler) sequencePrepares(ctx context.Context) {
	for _, i := range sc.order {
		close(sc.prepTurn[i])
		select {
		case <-sc.prepDone[i]:
		case <-ctx.Done():
			return
		}
	}
}

// acquire waits for layer i's download turn; every layer takes it exactly
// once and gives it back with release.
func (sc *scheduler) acquire(ctx context.Context, i int) error {
	return wait(ctx, sc.turn[i])
}

func (sc *scheduler) release(i int) {
	if sc.slot[i] {
		<-sc.sem
	}
}

// waitPrepare waits for layer i's turn to prepare its snapshot; prepared
// passes the turn on. Every layer calls prepared, whether it prepared or
// not, or the layers after it would wait forever; calling it twice is fine.
func (sc *scheduler) waitPrepare(ctx context.Context, i int) error {
	return wait(ctx, sc.prepTurn[i])
}

func (sc *scheduler) prepared(i int) {
	sc.prepOnce[i].Do(func() { close(sc.prepDone[i]) })
}

func wait(ctx context.Context, c <-chan struct{}) error {
	select {
	case <-c:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
