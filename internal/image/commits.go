package image

import (
	"sync"

	"github.com/berth-dev/berth/internal/snapshot"
	"github.com/opencontainers/go-digest"
)

// commitQueue batches one Fetch's snapshot commits. A layer's commit names
// its parent, which must be committed first, so the layers of a pull
// commit in order; unpacked in parallel, the upper layers are usually
// verified before a lower one and then wait for it. When it commits, it
// takes along every verified layer directly above it: one CommitChain,
// one metadata write and fsync instead of one per layer at the very end
// of the pull (measured here: 2–10 ms each). A layer a batch committed
// finds itself done when its turn comes.
type commitQueue struct {
	chain     []digest.Digest // chain IDs, the committed names
	mu        sync.Mutex
	keys      []string // keys[i]: layer i's verified active snapshot, "" until then
	committed []bool   // committed[i]: a batch committed layer i
}

func newCommitQueue(chain []digest.Digest) *commitQueue {
	return &commitQueue{chain: chain, keys: make([]string, len(chain)), committed: make([]bool, len(chain))}
}

// ready records layer i's verified snapshot as waiting for its commit.
func (q *commitQueue) ready(i int, key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.keys[i] = key
}

// take returns the links to commit for layer i, whose parent is committed:
// i and the verified layers directly above it; none when a batch has
// committed i already. The links are marked committed until settle says
// otherwise.
func (q *commitQueue) take(i int) []snapshot.ChainLink {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.committed[i] {
		return nil
	}
	var links []snapshot.ChainLink
	for k := i; k < len(q.keys) && q.keys[k] != "" && !q.committed[k]; k++ {
		parent := ""
		if k > 0 {
			parent = q.chain[k-1].String()
		}
		links = append(links, snapshot.ChainLink{Name: q.chain[k].String(), Key: q.keys[k], Parent: parent})
		q.committed[k] = true
	}
	return links
}

// settle unmarks the links of a batch starting at layer i that were not
// committed (the batch stopped after n): each of those layers commits
// again on its own turn and meets the failure itself.
func (q *commitQueue) settle(i, n, taken int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for k := i + n; k < i+taken; k++ {
		q.committed[k] = false
	}
}
