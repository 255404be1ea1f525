package producer

import (
	"context"
	"fmt"
	"math"
	"sync"
)

// idBlock is how many producer ids one metadata-store write reserves: a
// burst of restarting agents must not cost a store round trip each.
const idBlock = 1000

// Allocator reserves ranges of producer ids durably, so that no id is
// handed out twice, across restarts and (later) across brokers.
type Allocator interface {
	// AllocateProducerIDs reserves n consecutive ids and returns the first.
	AllocateProducerIDs(ctx context.Context, n int64) (int64, error)
}

// IDs hands out producer ids from blocks reserved in the metadata store.
// Ids left in a block at shutdown are skipped, never reused.
type IDs struct {
	store Allocator

	mu        sync.Mutex
	next, end int64
}

// NewIDs builds an id source over the store.
func NewIDs(store Allocator) *IDs { return &IDs{store: store} }

// Next returns a producer id no one has had before.
func (p *IDs) Next(ctx context.Context) (int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.next == p.end {
		first, err := p.store.AllocateProducerIDs(ctx, idBlock)
		if err != nil {
			return -1, fmt.Errorf("producer: reserve ids: %w", err)
		}
		p.next, p.end = first, first+idBlock
	}
	id := p.next
	p.next++
	return id, nil
}

// Above makes every id handed out from now on greater than id: a mirror
// (`vigil mirror`) copies batches with another cluster's producer ids,
// whose state stays on the partitions, and a producer of this cluster
// given one of those ids after the cutover would be taken for that
// producer (its epoch and sequences) and refused. Ids already reserved
// below id are skipped, never handed out. An id too close to the top of
// the range to stay clear of is an error.
func (p *IDs) Above(ctx context.Context, id int64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if id < p.next {
		return nil
	}
	if id > math.MaxInt64-4*idBlock {
		return fmt.Errorf("producer: id %d is too close to the top of the range to hand out ids above it", id)
	}
	first, err := p.store.AllocateProducerIDs(ctx, idBlock)
	if err != nil {
		return fmt.Errorf("producer: reserve ids: %w", err)
	}
	n := int64(idBlock)
	if first <= id {
		// Reserve through id in one step; first+idBlock is where the store
		// stands now, unless another broker reserved meanwhile, in which
		// case the block lies higher still.
		n = id + 1 - (first + idBlock) + idBlock
		if first, err = p.store.AllocateProducerIDs(ctx, n); err != nil {
			return fmt.Errorf("producer: reserve ids: %w", err)
		}
	}
	p.next, p.end = max(first, id+1), first+n
	return nil
}
