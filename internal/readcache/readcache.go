// Package readcache serves reads of segment objects, the catch-up path of
// a fetch (tail reads come from the partition's memory and never get
// here). Objects are read in aligned blocks through a bounded pool of I/O
// workers into a bounded LRU cache, and the blocks after each read are
// prefetched with spare workers only, so a forensic replay streams at the
// object store's speed without taking memory or I/O that the tail needs.
// It also remembers where batches start inside each partition's run of an
// object, so a consumer reading a run in many fetches does not rescan it
// from the start each time.
package readcache

import (
	"container/list"
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/vigilhq/vigil/internal/meta"
	"github.com/vigilhq/vigil/internal/objstore"
)

// DefaultBlockBytes is the read unit unless Options say otherwise: each
// block read is one ranged GET, so it also sets what a replay costs in
// requests (vigil cost).
const DefaultBlockBytes = 1 << 20

// Options bound the cache. Zero values take the defaults noted.
type Options struct {
	BlockBytes    int64 // read unit, DefaultBlockBytes
	CapacityBytes int64 // memory for cached blocks, 256 MiB
	Workers       int   // concurrent object reads, 4
	ReadAhead     int   // blocks prefetched past each read, 4
}

// Stats are counters for metrics.
type Stats struct {
	Hits, Misses, Prefetches int64
	Bytes                    int64 // cached now
	Waiting                  int64 // reads queued for a worker now
}

// runKey names one partition's run inside an object.
type runKey struct {
	object string
	pos    int64
}

type blockKey struct {
	run runKey
	idx int64
}

type block struct {
	key  blockKey
	data []byte
	elem *list.Element
}

// load is one block being read; waiters share its result.
type load struct {
	done chan struct{}
	data []byte
	err  error
}

// hint says that a batch with base offset base starts pos bytes into a run.
type hint struct{ base, pos int64 }

// Cache is safe for concurrent use.
type Cache struct {
	objs objstore.Store
	o    Options
	sem  chan struct{}

	mu      sync.Mutex
	blocks  map[blockKey]*block
	lru     *list.List // front: most recent
	bytes   int64
	loading map[blockKey]*load
	hints   map[runKey][]hint

	hits, misses, prefetches, waiting atomic.Int64
}

// maxHintRuns bounds the runs whose batch positions are remembered.
const maxHintRuns = 1 << 16

// New builds a cache over objs.
func New(objs objstore.Store, o Options) *Cache {
	if o.BlockBytes <= 0 {
		o.BlockBytes = DefaultBlockBytes
	}
	if o.CapacityBytes <= 0 {
		o.CapacityBytes = 256 << 20
	}
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.ReadAhead < 0 {
		o.ReadAhead = 0
	}
	return &Cache{objs: objs, o: o, sem: make(chan struct{}, o.Workers),
		blocks: map[blockKey]*block{}, lru: list.New(), loading: map[blockKey]*load{}, hints: map[runKey][]hint{}}
}

// Stats returns the counters.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	b := c.bytes
	c.mu.Unlock()
	return Stats{Hits: c.hits.Load(), Misses: c.misses.Load(), Prefetches: c.prefetches.Load(), Bytes: b, Waiting: c.waiting.Load()}
}

// Read returns the bytes [from, to) of seg's run (positions relative to
// the run's start, clipped to its size), then prefetches the blocks after.
// The bytes may be the cache's own: callers must not modify them.
func (c *Cache) Read(ctx context.Context, seg meta.Segment, from, to int64) ([]byte, error) {
	to = min(to, seg.Size)
	if from >= to {
		return nil, nil
	}
	run := runKey{seg.Object, seg.Position}
	first, last := from/c.o.BlockBytes, (to-1)/c.o.BlockBytes
	var out []byte
	for i := first; i <= last; i++ {
		data, err := c.block(ctx, seg, blockKey{run, i}, true)
		if err != nil {
			return nil, err
		}
		lo, hi := i*c.o.BlockBytes, i*c.o.BlockBytes+int64(len(data))
		part := data[max(from, lo)-lo : min(to, hi)-lo]
		if first == last {
			// Blocks are never written after loading, so a range inside
			// one is handed out as is (clipped against appends) rather
			// than copied: a replay reads mostly such ranges.
			out = part[:len(part):len(part)]
			break
		}
		if out == nil {
			out = make([]byte, 0, to-from)
		}
		out = append(out, part...)
	}
	for i := last + 1; i <= last+int64(c.o.ReadAhead) && i*c.o.BlockBytes < seg.Size; i++ {
		c.prefetch(seg, blockKey{run, i})
	}
	return out, nil
}

// block returns one block, from the cache or read through a worker. A
// demand read waits for a worker; a prefetch (wait false) gives up if
// none is free, so read-ahead only ever uses spare capacity.
func (c *Cache) block(ctx context.Context, seg meta.Segment, k blockKey, wait bool) ([]byte, error) {
	var l *load
	for l == nil {
		c.mu.Lock()
		if b := c.blocks[k]; b != nil {
			c.lru.MoveToFront(b.elem)
			c.mu.Unlock()
			if wait {
				c.hits.Add(1)
			}
			return b.data, nil
		}
		if other := c.loading[k]; other != nil {
			c.mu.Unlock()
			if !wait {
				return nil, nil
			}
			select {
			case <-other.done:
				c.hits.Add(1) // someone else paid for it (often a prefetch)
				return other.data, other.err
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		c.mu.Unlock()
		// Take a worker without holding the lock: finishing workers need it.
		if wait {
			c.waiting.Add(1)
			select {
			case c.sem <- struct{}{}:
				c.waiting.Add(-1)
			case <-ctx.Done():
				c.waiting.Add(-1)
				return nil, ctx.Err()
			}
		} else {
			select {
			case c.sem <- struct{}{}:
			default:
				return nil, nil
			}
		}
		c.mu.Lock()
		_, cached := c.blocks[k]
		_, loading := c.loading[k]
		if cached || loading {
			// Someone got there while we waited for a worker: look again.
			c.mu.Unlock()
			<-c.sem
			continue
		}
		l = &load{done: make(chan struct{})}
		c.loading[k] = l
		c.mu.Unlock()
	}

	if wait {
		c.misses.Add(1)
	} else {
		c.prefetches.Add(1)
	}
	off := k.idx * c.o.BlockBytes
	n := min(c.o.BlockBytes, seg.Size-off)
	// Prefetches outlive the fetch that started them.
	rctx := ctx
	if !wait {
		rctx = context.Background()
	}
	idleIO(func() { l.data, l.err = c.objs.GetRange(rctx, seg.Object, seg.Position+off, n) })
	if l.err == nil && int64(len(l.data)) != n {
		l.err = fmt.Errorf("readcache: %s [%d,+%d): short read of %d bytes", seg.Object, seg.Position+off, n, len(l.data))
	}
	<-c.sem
	c.mu.Lock()
	delete(c.loading, k)
	if l.err == nil {
		b := &block{key: k, data: l.data}
		b.elem = c.lru.PushFront(b)
		c.blocks[k] = b
		c.bytes += int64(len(b.data))
		for c.bytes > c.o.CapacityBytes && c.lru.Len() > 1 {
			old := c.lru.Remove(c.lru.Back()).(*block)
			delete(c.blocks, old.key)
			c.bytes -= int64(len(old.data))
		}
	}
	c.mu.Unlock()
	close(l.done)
	return l.data, l.err
}

func (c *Cache) prefetch(seg meta.Segment, k blockKey) {
	c.mu.Lock()
	_, cached := c.blocks[k]
	_, loading := c.loading[k]
	c.mu.Unlock()
	if cached || loading || len(c.sem) == cap(c.sem) {
		return
	}
	go c.block(context.Background(), seg, k, false)
}

// Hint records that the batch with base offset base starts pos bytes into
// seg's run. Hints must be added in increasing order per run.
func (c *Cache) Hint(seg meta.Segment, base, pos int64) {
	k := runKey{seg.Object, seg.Position}
	c.mu.Lock()
	defer c.mu.Unlock()
	hs := c.hints[k]
	if n := len(hs); n > 0 && hs[n-1].base >= base {
		return
	}
	if hs == nil && len(c.hints) >= maxHintRuns {
		clear(c.hints) // crude but bounded; hints only save scanning
	}
	c.hints[k] = append(hs, hint{base, pos})
}

// Seek returns where to start scanning seg's run for offset: the position
// of the last hinted batch at or before it, or the run's start.
func (c *Cache) Seek(seg meta.Segment, offset int64) int64 {
	k := runKey{seg.Object, seg.Position}
	c.mu.Lock()
	defer c.mu.Unlock()
	hs := c.hints[k]
	i := sort.Search(len(hs), func(i int) bool { return hs[i].base > offset })
	if i == 0 {
		return 0
	}
	return hs[i-1].pos
}

// Forget drops the hints of removed index entries (retention, compaction).
func (c *Cache) Forget(segs []meta.Segment) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range segs {
		delete(c.hints, runKey{s.Object, s.Position})
	}
}
