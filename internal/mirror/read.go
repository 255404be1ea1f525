package mirror

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// cluster is one side of a comparison: a client for its metadata, its
// offsets and its fetches. Only one partition of a cluster is read at a
// time (Verify goes partition by partition), so the leader cache needs no
// lock: the goroutine reading a partition is its only user until Verify
// has waited for it to end.
type cluster struct {
	name     string // "source" or "destination", as the output names it
	cl       *kgo.Client
	adm      *kadm.Client
	dec      kgo.Decompressor
	timeout  time.Duration
	maxBytes int32
	leaders  map[string]map[int32]int32
}

// newCluster builds the client of one side. Nothing is dialed yet.
//
// Fetches are capped at v12: from v13 on a fetch names topics by id, and
// v12 reads everything this comparison needs from any broker since Kafka
// 3.1 (Kafka 4 still serves it), so the request never depends on a
// cluster's topic ids.
func newCluster(name string, opts []kgo.Opt, timeout time.Duration, maxBytes int32) (*cluster, error) {
	versions := kversion.Stable()
	versions.SetMaxKeyVersion(kmsg.Fetch.Int16(), 12)
	all := append([]kgo.Opt{
		kgo.ClientID("vigil-mirror-verify"),
		kgo.DialTimeout(min(timeout, 10*time.Second)),
		kgo.RetryTimeout(timeout),
		kgo.MaxVersions(versions),
	}, opts...)
	cl, err := kgo.NewClient(all...)
	if err != nil {
		return nil, fmt.Errorf("%s client: %w", name, err)
	}
	return &cluster{name: name, cl: cl, adm: kadm.NewClient(cl), dec: kgo.DefaultDecompressor(),
		timeout: timeout, maxBytes: maxBytes, leaders: map[string]map[int32]int32{}}, nil
}

func (c *cluster) close() { c.cl.Close() }

// chunk is what one fetch gave: records in offset order, or the error
// that ended the read. A closed channel is the end of the range.
type chunk struct {
	recs []*kgo.Record
	err  error
}

// stream reads one partition's records in [from, to) at read_uncommitted
// with control records kept, so transaction markers are compared like
// data. It runs in its own goroutine so both clusters are fetched at
// once; the channel holds one chunk, so at most three fetch responses of
// maxBytes are alive per side (one being compared, one waiting, one
// arriving) however long the range.
type stream struct {
	ctx    context.Context
	ch     chan chunk
	cur    []*kgo.Record
	cancel context.CancelFunc
}

func (c *cluster) open(ctx context.Context, topic string, part int32, from, to int64) *stream {
	sctx, cancel := context.WithCancel(ctx)
	s := &stream{ctx: ctx, ch: make(chan chunk, 1), cancel: cancel}
	go c.read(sctx, topic, part, from, to, s.ch)
	return s
}

// next returns the next record, nil at the end of the range.
func (s *stream) next() (*kgo.Record, error) {
	for len(s.cur) == 0 {
		ch, ok := <-s.ch
		if !ok {
			// The reader also stops when the context ends; that is not
			// the end of the range.
			return nil, s.ctx.Err()
		}
		if ch.err != nil {
			return nil, ch.err
		}
		s.cur = ch.recs
	}
	r := s.cur[0]
	s.cur[0] = nil // the comparison is done with it: let it go
	s.cur = s.cur[1:]
	return r, nil
}

// close stops the reader and waits for it.
func (s *stream) close() {
	s.cancel()
	for range s.ch {
	}
}

// read fetches [from, to) into out and closes it. A cluster may fail for
// up to c.timeout at a stretch (a leader moving, a broker restarting)
// before the read gives up with an error.
func (c *cluster) read(ctx context.Context, topic string, part int32, from, to int64, out chan<- chunk) {
	defer close(out)
	send := func(ch chunk) bool {
		select {
		case out <- ch:
			return true
		case <-ctx.Done():
			return false
		}
	}
	var (
		next         = from
		lastProgress = time.Now()
		backoff      = 100 * time.Millisecond
		empties      int
	)
	for next < to {
		recs, hwm, nextOff, throttle, err := c.fetchOnce(ctx, topic, part, next)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			var perm *permanentError
			if errors.As(err, &perm) || time.Since(lastProgress) > c.timeout {
				send(chunk{err: fmt.Errorf("%s: read %s/%d at offset %d: %w", c.name, topic, part, next, err)})
				return
			}
			delete(c.leaders[topic], part) // the leader may have moved
			if !sleep(ctx, backoff) {
				return
			}
			backoff = min(2*backoff, 2*time.Second)
			continue
		}
		lastProgress, backoff = time.Now(), 100*time.Millisecond
		if len(recs) == 0 && nextOff == next {
			switch {
			case throttle > 0:
				// A quota held the data back; it is still there.
				if !sleep(ctx, throttle) {
					return
				}
				continue
			case hwm <= next:
				// The log now ends before the range listed at the start
				// (truncated, or deleted and recreated): the comparison
				// sees the records missing on this side.
				return
			}
			// Nothing at or after next below the high watermark answers:
			// the rest of the range was compacted away. Asked twice, so a
			// broker's one odd empty answer does not end the read.
			if empties++; empties >= 2 {
				return
			}
			continue
		}
		empties = 0
		next = nextOff
		for i, r := range recs {
			if r.Offset >= to {
				recs, next = recs[:i], to
				break
			}
		}
		if len(recs) > 0 && !send(chunk{recs: recs}) {
			return
		}
	}
}

// permanentError is a fetch failure that waiting will not fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// fetchOnce sends one fetch for the partition at offset to its leader and
// decodes the answer with franz-go's own record parsing. nextOff is where
// the following fetch starts: past every batch returned, including
// batches whose records were all compacted away.
func (c *cluster) fetchOnce(ctx context.Context, topic string, part int32, offset int64) (recs []*kgo.Record, hwm, nextOff int64, throttle time.Duration, err error) {
	leader, err := c.leader(ctx, topic, part)
	if err != nil {
		return nil, 0, 0, 0, err
	}
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxWaitMillis = 500
	req.MinBytes = 1
	req.MaxBytes = c.maxBytes
	req.IsolationLevel = 0 // read_uncommitted: aborted data is mirrored data too
	req.SessionEpoch = -1  // a full fetch, no session to keep
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition = part
	rp.FetchOffset = offset
	rp.PartitionMaxBytes = c.maxBytes
	rp.CurrentLeaderEpoch = -1
	rp.LogStartOffset = -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)

	rctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	resp, err := req.RequestWith(rctx, c.cl.Broker(int(leader)))
	if err != nil {
		return nil, 0, 0, 0, fmt.Errorf("fetch from broker %d: %w", leader, err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return nil, 0, 0, 0, classify(fmt.Errorf("fetch from broker %d: %w", leader, err))
	}
	throttle = time.Duration(resp.ThrottleMillis) * time.Millisecond
	for i := range resp.Topics {
		t := &resp.Topics[i]
		if t.Topic != topic {
			continue
		}
		for j := range t.Partitions {
			p := &t.Partitions[j]
			if p.Partition != part {
				continue
			}
			fp, nextOff := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{
				KeepControlRecords: true,
				Offset:             offset,
				IsolationLevel:     kgo.ReadUncommitted(),
				Topic:              topic,
				Partition:          part,
			}, p, c.dec, nil)
			if fp.Err != nil && len(fp.Records) == 0 {
				return nil, 0, 0, 0, classify(fmt.Errorf("broker %d: %w", leader, fp.Err))
			}
			return fp.Records, p.HighWatermark, nextOff, throttle, nil
		}
	}
	return nil, 0, 0, 0, fmt.Errorf("broker %d answered the fetch without %s/%d", leader, topic, part)
}

// classify marks the errors a retry cannot fix: those the protocol does
// not call retriable (authorization, offset out of range, a corrupt
// batch).
func classify(err error) error {
	var ke *kerr.Error
	if errors.As(err, &ke) && ke.Retriable {
		return err
	}
	if errors.Is(err, kerr.OffsetOutOfRange) {
		return &permanentError{fmt.Errorf("%w (retention or DeleteRecords moved the log start during the comparison?)", err)}
	}
	return &permanentError{err}
}

// leader is the broker that leads the partition, from metadata cached
// until a fetch fails.
func (c *cluster) leader(ctx context.Context, topic string, part int32) (int32, error) {
	if l, ok := c.leaders[topic][part]; ok {
		return l, nil
	}
	md, err := c.adm.Metadata(ctx, topic)
	if err != nil {
		return -1, fmt.Errorf("metadata: %w", err)
	}
	td, ok := md.Topics[topic]
	if !ok {
		return -1, fmt.Errorf("metadata does not list topic %s", topic)
	}
	if td.Err != nil {
		return -1, fmt.Errorf("metadata of %s: %w", topic, td.Err)
	}
	pd, ok := td.Partitions[part]
	if !ok || pd.Leader < 0 {
		return -1, fmt.Errorf("no leader for %s/%d", topic, part)
	}
	if c.leaders[topic] == nil {
		c.leaders[topic] = map[int32]int32{}
	}
	c.leaders[topic][part] = pd.Leader
	return pd.Leader, nil
}

// sleep waits d unless ctx ends first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
