package txncheck

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Follow reads r's topic from its start with a client of its own, outside
// any group, at r's isolation level, and hands every poll to the checker
// until ctx ends. The client retries through broker restarts; a fetch
// error that says records were lost (franz-go's ErrDataLoss) is a
// violation.
func (c *Checker) Follow(ctx context.Context, seed string, r *Reader) error {
	iso := kgo.ReadUncommitted()
	if r.committed {
		iso = kgo.ReadCommitted()
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(seed),
		kgo.ConsumeTopics(r.topic.Name),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(iso),
		kgo.FetchMaxWait(200*time.Millisecond),
	)
	if err != nil {
		return err
	}
	defer cl.Close()
	for ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachError(func(t string, p int32, err error) {
			var loss *kgo.ErrDataLoss
			if errors.As(err, &loss) {
				c.Violation("%s: %s/%d: %v", r.name, t, p, err)
			}
		})
		var recs []Record
		fs.EachRecord(func(kr *kgo.Record) { recs = append(recs, FromKgo(kr)) })
		c.Poll(r, recs)
	}
	return nil
}

// FromKgo is a franz-go record as the checker sees it.
func FromKgo(kr *kgo.Record) Record {
	rec := Record{Partition: kr.Partition, Offset: kr.Offset, Value: string(kr.Value)}
	for _, h := range kr.Headers {
		switch h.Key {
		case "txn":
			rec.Txn = string(h.Value)
		case "txn-n":
			rec.TxnSize, _ = strconv.Atoi(string(h.Value))
		}
	}
	return rec
}
