package scorecard

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DefaultTailRatio is the burst and replay probe's pass threshold: the
// live producer's p99 with a replay running at most this many times its
// p99 without. vigil bench incident's target is 1.1 x on a dedicated
// machine with thousands of samples a side; here a side has about 500
// samples (its p99 is its fifth slowest), the scorecard's producer and
// its replay reader share one process and host, and the hardware is
// unknown, so a p99 that merely drifts can move by half. Twice the tail
// is what a pipeline's alerting notices: a cluster whose replay doubles
// the tail fails.
const DefaultTailRatio = 2.0

// burstWarmup of each window counts on neither side: the replay's client
// connects, the producer's last request of the other side ends.
const burstWarmup = 200 * time.Millisecond

var burstProbes = []namedProbe{
	{name: "tail latency with a replay running", needs: []int16{0, 1, 2, 3, 19}, fn: probeBurst,
		limit: func(c Config) time.Duration { return c.ProbeTimeout + burstWindows*burstWindow }},
}

// Burst is what the burst and replay probe measured.
type Burst struct {
	HistoryRecords int     `json:"history_records"`
	HistoryBytes   int     `json:"history_bytes"`
	Rate           int     `json:"rate"` // the live producer's records a second
	Without        Latency `json:"without_replay"`
	With           Latency `json:"with_replay"`
	// Ratio is With.P99 / Without.P99, Threshold the pass limit.
	Ratio     float64 `json:"p99_ratio"`
	Threshold float64 `json:"threshold"`
	// What the replay read: bytes of record batches as the cluster sent
	// them, in how many passes over the history, at how many MB a second
	// over the windows it ran in.
	ReplayBytes  int64         `json:"replay_bytes"`
	ReplayPasses int           `json:"replay_passes"`
	ReplayFor    time.Duration `json:"replay_ns"`
	ReplayMBps   float64       `json:"replay_mb_per_s"`
}

// Latency is one side's acknowledgement latencies.
type Latency struct {
	Samples int           `json:"samples"`
	P50     time.Duration `json:"p50_ns"`
	P99     time.Duration `json:"p99_ns"`
	Max     time.Duration `json:"max_ns"`
}

func latencyOf(d []time.Duration) Latency {
	if len(d) == 0 {
		return Latency{}
	}
	s := slices.Clone(d)
	slices.Sort(s)
	q := func(f float64) time.Duration { return s[max(0, int(math.Ceil(f*float64(len(s))))-1)] }
	return Latency{Samples: len(s), P50: q(0.5), P99: q(0.99), Max: s[len(s)-1]}
}

func (l Latency) String() string {
	return fmt.Sprintf("p50 %s p99 %s (%d records)", l.P50.Round(10*time.Microsecond), l.P99.Round(10*time.Microsecond), l.Samples)
}

// probeBurst writes a history, then runs a paced producer (acks=all, one
// record in flight, so each record has its own latency) through windows
// without and with a replay reader re-reading the history from offset 0
// as fast as it can, alternating as vigil bench incident does: the tail
// drifts on a shared machine, so both sides are measured in the same
// seconds.
func probeBurst(ctx context.Context, r *run) (Status, string, error) {
	cl, err := r.client()
	if err != nil {
		return Fail, "", err
	}
	defer cl.Close()
	topic, err := r.createTopic(ctx, kadm.NewClient(cl), "burst", nil)
	if err != nil {
		return Fail, "", err
	}
	b := &Burst{HistoryRecords: burstHistoryRecords, Rate: burstRate, Threshold: r.cfg.tailRatio}
	// Random padding: a producer's compression must not shrink the
	// history to nothing.
	padRaw := make([]byte, (maxValueBytes-80)/2)
	var end int64
	const chunk = 500
	for i := 0; i < burstHistoryRecords; i += chunk {
		var recs []*kgo.Record
		for j := i; j < min(i+chunk, burstHistoryRecords); j++ {
			if _, err := rand.Read(padRaw); err != nil {
				return Fail, "", fmt.Errorf("random padding: %w", err)
			}
			v := fmt.Appendf(nil, `{"class_uid":4001,"seq":%d,"pad":"%x"}`, j, padRaw)
			k := fmt.Appendf(nil, "host-%02d", j%16)
			recs = append(recs, &kgo.Record{Topic: topic, Key: k, Value: v})
			b.HistoryBytes += len(k) + len(v)
		}
		if err := r.produce(ctx, cl, recs...); err != nil {
			return Fail, fmt.Sprintf("history: %d records written", i), err
		}
		end = recs[len(recs)-1].Offset + 1
	}

	md, err := kadm.NewClient(cl).Metadata(ctx, topic)
	if err != nil {
		return Fail, "", fmt.Errorf("metadata of %s: %w", topic, err)
	}
	pd, ok := md.Topics[topic].Partitions[0]
	if !ok || pd.Leader < 0 {
		return Fail, "", fmt.Errorf("metadata of %s: no leader of partition 0", topic)
	}
	leader := pd.Leader
	// The replay's own client, as a forensic reader is another process.
	rcl, err := r.fetchV12Client()
	if err != nil {
		return Fail, "", err
	}
	defer rcl.Close()

	// The live producer: its own client, no linger, one record at a time.
	live, err := r.client(kgo.ProducerLinger(0))
	if err != nil {
		return Fail, "", err
	}
	defer live.Close()
	var without, with []time.Duration
	seq := 0
	interval := time.Second / burstRate
	for w := range burstWindows {
		replaying := w%2 == 1
		start := time.Now()
		wctx, cancel := context.WithDeadline(ctx, start.Add(burstWindow))
		type result struct {
			bytes  int64
			passes int
			err    error
		}
		done := make(chan result, 1)
		if replaying {
			go func() {
				n, passes, err := r.replay(wctx, rcl, leader, topic, end)
				done <- result{n, passes, err}
			}()
		}
		var perr error
		for next := start; wctx.Err() == nil; next = next.Add(interval) {
			if d := time.Until(next); d > 0 {
				if !sleep(wctx, d) {
					break
				}
			} else if -d > interval {
				// Behind (a slow acknowledgement): skip the missed slots
				// rather than send them at once.
				next = time.Now()
			}
			rec := &kgo.Record{Topic: topic, Value: fmt.Appendf(nil, `{"class_uid":4001,"live":%d}`, seq)}
			if err := r.budget.take(1, len(rec.Value)); err != nil {
				perr = err
				break
			}
			seq++
			sent := time.Now()
			if err := live.ProduceSync(ctx, rec).FirstErr(); err != nil {
				perr = fmt.Errorf("live record %d: %w", seq, err)
				break
			}
			if sent.Sub(start) < burstWarmup {
				continue
			}
			if replaying {
				with = append(with, time.Since(sent))
			} else {
				without = append(without, time.Since(sent))
			}
		}
		cancel()
		if replaying {
			res := <-done
			b.ReplayBytes += res.bytes
			b.ReplayPasses += res.passes
			b.ReplayFor += time.Since(start)
			if res.err != nil && perr == nil {
				perr = fmt.Errorf("replay: %w", res.err)
			}
		}
		if perr != nil {
			return Fail, fmt.Sprintf("%d live records sent", seq), perr
		}
		if ctx.Err() != nil {
			break
		}
	}
	b.Without, b.With = latencyOf(without), latencyOf(with)
	if b.ReplayFor > 0 {
		b.ReplayMBps = float64(b.ReplayBytes) / 1e6 / b.ReplayFor.Seconds()
	}
	if b.Without.P99 > 0 {
		b.Ratio = float64(b.With.P99) / float64(b.Without.P99)
	}
	r.burst = b
	detail := fmt.Sprintf("history of %d records (%d KiB); live %d records/s, acks=all, one in flight: without the replay %s, with it %s; p99 ratio %.2f x (pass at most %.2f x); the replay re-read the history %d times, %.1f MB in %s (%.1f MB/s)",
		b.HistoryRecords, b.HistoryBytes/1024, burstRate, b.Without, b.With, b.Ratio, b.Threshold,
		b.ReplayPasses, float64(b.ReplayBytes)/1e6, b.ReplayFor.Round(time.Millisecond), b.ReplayMBps)
	switch {
	case ctx.Err() != nil && (b.Without.Samples == 0 || b.With.Samples == 0):
		return Undetermined, detail, fmt.Errorf("the time limit came before both sides were measured: %w", ctx.Err())
	case b.Without.Samples < 50 || b.With.Samples < 50:
		return Undetermined, detail, errors.New("fewer than 50 acknowledged records on a side: too few for a p99")
	case b.ReplayPasses == 0:
		return Undetermined, detail, errors.New("the replay did not read the history through once: nothing was measured against it")
	case b.Ratio > b.Threshold:
		return Fail, detail, fmt.Errorf("the replay raised the tail %.2f x, above %.2f x", b.Ratio, b.Threshold)
	}
	return Pass, detail, nil
}

// replay reads partition 0 of topic from offset 0 to end over and over
// until ctx ends, as a forensic reader replaying history would, and
// returns the bytes of record batches it read below end and the passes it
// completed. It sends raw fetches (read_uncommitted, 1 MiB answers, one
// at a time) and does not decode the batches: the cluster does the
// replay's work, not the scorecard's process, whose CPU the live
// producer needs too.
func (r *run) replay(ctx context.Context, cl *kgo.Client, leader int32, topic string, end int64) (int64, int, error) {
	var n int64
	passes := 0
	offset := int64(0)
	for ctx.Err() == nil {
		req := kmsg.NewPtrFetchRequest()
		req.ReplicaID, req.MaxWaitMillis, req.MinBytes, req.MaxBytes = -1, 100, 1, 1<<20
		req.SessionEpoch = -1
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.FetchOffset, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch, rp.LogStartOffset = offset, 1<<20, -1, -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl.Broker(int(leader)))
		if ctx.Err() != nil {
			break
		}
		if err == nil {
			err = kerr.ErrorForCode(resp.ErrorCode)
		}
		if err == nil && (len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1) {
			err = errors.New("the answer does not name the partition")
		}
		if err == nil {
			err = kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode)
		}
		if err != nil {
			return n, passes, fmt.Errorf("fetch %s/0 at %d: %w", topic, offset, err)
		}
		raw := resp.Topics[0].Partitions[0].RecordBatches
		next := offset
		for len(raw) >= 27 {
			length := int(int32(binary.BigEndian.Uint32(raw[8:12])))
			if length < 15 || 12+length > len(raw) {
				break
			}
			last := int64(binary.BigEndian.Uint64(raw[0:8])) + int64(int32(binary.BigEndian.Uint32(raw[23:27])))
			if last >= next {
				next = last + 1
			}
			n += int64(12 + length)
			raw = raw[12+length:]
		}
		if next == offset {
			return n, passes, fmt.Errorf("fetch %s/0 at %d: no whole record batch in the answer", topic, offset)
		}
		offset = next
		if offset >= end {
			passes++
			offset = 0
		}
	}
	return n, passes, nil
}
