package storage

// Topics other brokers of a cluster created, changed or deleted.

import (
	"context"
	"fmt"
	"slices"

	"github.com/vigilhq/vigil/internal/meta"
	"github.com/vigilhq/vigil/internal/partition"
)

// Refresh loads topics other brokers created, changed or deleted.
func (e *Engine) Refresh(ctx context.Context) error {
	tops, err := e.meta.Topics(ctx)
	if err != nil {
		return fmt.Errorf("storage: refresh topics: %w", err)
	}
	seen := map[string]bool{}
	for _, t := range tops {
		seen[t.Name] = true
		cur := e.Topic(t.Name)
		switch {
		case cur == nil || cur.ID != t.ID:
			if cur != nil {
				e.forget(ctx, cur)
			}
			top := &Topic{Topic: t, Logs: make([]*partition.Log, t.Partitions)}
			for p := range top.Logs {
				top.Logs[p] = e.newLog(t, int32(p))
			}
			e.mu.Lock()
			if e.topics[t.Name] == nil {
				e.topics[t.Name], e.byID[t.ID] = top, top
			}
			e.mu.Unlock()
		case !sameTopic(cur.Topic, t):
			e.mu.Lock()
			if cur = e.topics[t.Name]; cur != nil && cur.ID == t.ID {
				logs := slices.Clone(cur.Logs)
				for p := int32(len(logs)); p < t.Partitions; p++ {
					logs = append(logs, e.newLog(t, p))
				}
				nt := &Topic{Topic: t, Logs: logs}
				e.topics[t.Name], e.byID[t.ID] = nt, nt
			}
			e.mu.Unlock()
		}
	}
	for _, t := range e.Topics() {
		if !seen[t.Name] {
			e.forget(ctx, t)
		}
	}
	return nil
}

func sameTopic(a, b meta.Topic) bool {
	if a.Partitions != b.Partitions || len(a.Configs) != len(b.Configs) {
		return false
	}
	for k, v := range a.Configs {
		if w, ok := b.Configs[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// forget drops a topic another broker deleted.
func (e *Engine) forget(ctx context.Context, t *Topic) {
	e.mu.Lock()
	cur := e.topics[t.Name]
	dropped := cur != nil && cur.ID == t.ID
	if dropped {
		delete(e.topics, t.Name)
		delete(e.byID, t.ID)
	}
	e.mu.Unlock()
	for _, l := range t.Logs {
		l.MarkDeleted()
	}
	if dropped {
		e.topicDropped(ctx, t)
	}
}
