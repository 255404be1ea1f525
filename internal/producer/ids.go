package producer

import (
	"context"
	"fmt"
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
