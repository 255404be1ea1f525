package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/test/chaos/checker"
)

// The workload, after Jepsen's queue: producers send unique values with
// acks=all through idempotent franz-go clients, and transactional
// producers send them in transactions of a few values over several
// partitions, committing most and aborting some; consumers in one group
// (subscribed, committing what they recorded) and one consumer with
// partitions assigned by hand read along; consumers are killed and
// replaced on a schedule, which forces rebalances. After the faults heal,
// a final read takes every partition from its start to its high
// watermark. Every reader is read_committed.
const (
	topic      = "queue"
	partitions = 8
	group      = "chaos-group"
	clockTopic = "clock" // LogAppendTime: the clock-jump fault's probe
)

// WorkloadConfig sizes the workload.
type WorkloadConfig struct {
	Producers      int
	Rate           int // records/s per producer
	GroupConsumers int
	KillEvery      time.Duration // mean time between consumer kills (0: never)
	TxnProducers   int           // transactional producers
	TxnRate        int           // transactions/s per transactional producer
	TxnSize        int           // values per transaction
	AbortRate      float64       // share of transactions aborted on purpose
}

// Workload runs producers and consumers against the cluster.
type Workload struct {
	cfg  WorkloadConfig
	h    *History
	rnd  *rand.Rand
	logf func(string, ...any)

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex
	consumers map[string]*consumer // running, by name
	nextID    atomic.Int64
	position  map[int32]int64 // the assign consumer's next offsets
	kills     int
	sent      atomic.Int64
	acked     atomic.Int64
}

func newWorkload(cfg WorkloadConfig, h *History, seed uint64, logf func(string, ...any)) *Workload {
	ctx, cancel := context.WithCancel(context.Background())
	return &Workload{cfg: cfg, h: h, rnd: rand.New(rand.NewPCG(seed, 7)), logf: logf, ctx: ctx, cancel: cancel,
		consumers: map[string]*consumer{}, position: map[int32]int64{}}
}

func clientOpts(extra ...kgo.Opt) []kgo.Opt {
	return append([]kgo.Opt{kgo.SeedBrokers(Seeds()...), kgo.MetadataMinAge(500 * time.Millisecond),
		kgo.RetryBackoffFn(func(int) time.Duration { return 200 * time.Millisecond }),
		kgo.DialTimeout(3 * time.Second), kgo.RequestTimeoutOverhead(5 * time.Second)}, extra...)
}

// createTopics creates the workload's topic and waits until every
// partition has a leader.
func createTopics(ctx context.Context) error {
	cl, err := kgo.NewClient(clientOpts()...)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	lat := "LogAppendTime"
	for _, t := range []struct {
		name  string
		parts int32
		cfg   map[string]*string
	}{{topic, partitions, nil}, {clockTopic, 6, map[string]*string{"message.timestamp.type": &lat}}} {
		for {
			_, err := adm.CreateTopic(ctx, t.parts, 1, t.cfg, t.name)
			if err == nil || errors.Is(err, kerr.TopicAlreadyExists) {
				break
			}
			if ctx.Err() != nil {
				return fmt.Errorf("create topic %s: %w", t.name, err)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	for {
		md, err := adm.Metadata(ctx, topic)
		if err == nil {
			ok := len(md.Topics[topic].Partitions) == partitions
			for _, p := range md.Topics[topic].Partitions {
				ok = ok && p.Err == nil && p.Leader >= 0
			}
			if ok {
				return nil
			}
		}
		if ctx.Err() != nil {
			return fmt.Errorf("partitions of %s never all led", topic)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// Start starts every producer and consumer.
func (w *Workload) Start() {
	for i := 1; i <= w.cfg.Producers; i++ {
		w.wg.Add(1)
		go w.produce(fmt.Sprintf("p%d", i))
	}
	for i := 1; i <= w.cfg.TxnProducers; i++ {
		w.wg.Add(1)
		go w.transact(fmt.Sprintf("t%d", i), uint64(i))
	}
	for range w.cfg.GroupConsumers {
		w.startConsumer(true)
	}
	w.startConsumer(false)
	if w.cfg.KillEvery > 0 {
		w.wg.Add(1)
		go w.killLoop()
	}
}

// produce sends unique values at the configured rate until the workload
// stops, recording each completion. A client that fails many records in
// a row is replaced (a new producer id), as an application would.
func (w *Workload) produce(name string) {
	defer w.wg.Done()
	gen := 0
	for w.ctx.Err() == nil {
		gen++
		proc := fmt.Sprintf("%s.%d", name, gen)
		cl, err := kgo.NewClient(clientOpts(kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()),
			kgo.RecordDeliveryTimeout(30*time.Second), kgo.ProducerLinger(2*time.Millisecond), kgo.MaxBufferedRecords(2000))...)
		if err != nil {
			w.logf("producer %s: %v", proc, err)
			time.Sleep(time.Second)
			continue
		}
		var consecutive atomic.Int64
		sem := make(chan struct{}, 200)
		tick := time.NewTicker(time.Second / time.Duration(max(1, w.cfg.Rate)))
		for seq := 0; w.ctx.Err() == nil && consecutive.Load() < 100; seq++ {
			select {
			case <-w.ctx.Done():
				continue
			case <-tick.C:
			}
			select {
			case sem <- struct{}{}:
			case <-w.ctx.Done():
				continue
			}
			v := fmt.Sprintf("%s-%07d", proc, seq)
			t0 := w.h.Since()
			w.sent.Add(1)
			cl.Produce(context.Background(), &kgo.Record{Key: []byte(v), Value: []byte(v)}, func(r *kgo.Record, err error) {
				<-sem
				op := checker.Op{T0: t0, Proc: proc, F: checker.Send, Value: v, Type: checker.OK, Partition: r.Partition, Offset: r.Offset}
				if err != nil {
					consecutive.Add(1)
					op.Type, op.Err, op.Partition, op.Offset = checker.Info, err.Error(), -1, -1
				} else {
					consecutive.Store(0)
					w.acked.Add(1)
				}
				w.h.Add(op)
			})
		}
		tick.Stop()
		fctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
		cl.Flush(fctx)
		cancel()
		cl.Close() // fails what is still buffered: recorded as info
		if w.ctx.Err() == nil {
			w.logf("producer %s: 100 records failed in a row; replacing the client", proc)
		}
	}
}

// transact runs transactions of TxnSize values until the workload stops,
// committing or (AbortRate of them) aborting each, and records every
// value with its transaction's outcome: ok (committed), aborted, or info
// (EndTxn failed: all or nothing, unknown which). A client whose
// transaction failed is replaced under the same transactional id, which
// fences the old one.
func (w *Workload) transact(name string, seed uint64) {
	defer w.wg.Done()
	rnd := rand.New(rand.NewPCG(seed, 11))
	gen := 0
	for w.ctx.Err() == nil {
		gen++
		proc := fmt.Sprintf("%s.%d", name, gen)
		cl, err := kgo.NewClient(clientOpts(kgo.DefaultProduceTopic(topic), kgo.TransactionalID("chaos-"+name),
			kgo.TransactionTimeout(20*time.Second), kgo.RecordDeliveryTimeout(20*time.Second), kgo.ProducerLinger(time.Millisecond))...)
		if err != nil {
			w.logf("transactional producer %s: %v", proc, err)
			time.Sleep(time.Second)
			continue
		}
		tick := time.NewTicker(time.Second / time.Duration(max(1, w.cfg.TxnRate)))
		for n := 0; w.ctx.Err() == nil; n++ {
			select {
			case <-w.ctx.Done():
				continue
			case <-tick.C:
			}
			if !w.oneTxn(cl, proc, n, rnd) {
				break
			}
		}
		tick.Stop()
		cl.Close()
	}
}

// oneTxn runs one transaction; false means the client must be replaced.
func (w *Workload) oneTxn(cl *kgo.Client, proc string, n int, rnd *rand.Rand) bool {
	id := fmt.Sprintf("%s#%d", proc, n)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := cl.BeginTransaction(); err != nil {
		w.logf("%s: begin: %v", id, err)
		return false
	}
	t0 := w.h.Since()
	ops := make([]checker.Op, w.cfg.TxnSize)
	var produceErr error
	var mu sync.Mutex
	for i := range ops {
		v := fmt.Sprintf("%s-%06d-%d", proc, n, i)
		ops[i] = checker.Op{T0: t0, Proc: proc, F: checker.Send, Value: v, Txn: id, Partition: -1, Offset: -1}
		w.sent.Add(1)
		cl.Produce(ctx, &kgo.Record{Key: []byte(v), Value: []byte(v)}, func(r *kgo.Record, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				produceErr = err
				return
			}
			ops[i].Partition, ops[i].Offset = r.Partition, r.Offset
		})
	}
	cl.Flush(ctx)
	mu.Lock()
	commit := produceErr == nil && rnd.Float64() >= w.cfg.AbortRate
	mu.Unlock()
	how := kgo.TryCommit
	if !commit {
		how = kgo.TryAbort
	}
	err := cl.EndTransaction(ctx, how)
	typ := checker.OK
	switch {
	case err != nil:
		typ = checker.Info
	case !commit:
		typ = checker.Aborted
	}
	for _, op := range ops {
		op.Type = typ
		if err != nil {
			op.Err = err.Error()
		} else if produceErr != nil {
			op.Err = produceErr.Error()
		}
		if typ == checker.OK {
			w.acked.Add(1)
		}
		w.h.Add(op)
	}
	return err == nil
}

// consumer is one running consumer.
type consumer struct {
	name   string
	group  bool
	cl     *kgo.Client
	cancel context.CancelFunc
	done   chan struct{}
}

func (w *Workload) startConsumer(inGroup bool) {
	id := w.nextID.Add(1)
	name := fmt.Sprintf("a%d", id)
	if inGroup {
		name = fmt.Sprintf("c%d", id)
	}
	g := ""
	if inGroup {
		g = group
	}
	opts := clientOpts(kgo.FetchMaxWait(500*time.Millisecond), kgo.FetchMaxBytes(4<<20), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if inGroup {
		parts := func(m map[string][]int32) []int32 {
			ps := append([]int32(nil), m[topic]...)
			sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
			return ps
		}
		opts = append(opts, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.SessionTimeout(6*time.Second), kgo.HeartbeatInterval(time.Second), kgo.RebalanceTimeout(20*time.Second),
			kgo.AutoCommitMarks(), kgo.AutoCommitInterval(time.Second),
			kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
				w.h.Add(checker.Op{Proc: name, F: checker.Assigned, Group: g, Parts: parts(m)})
			}),
			kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, m map[string][]int32) {
				w.h.Add(checker.Op{Proc: name, F: checker.Revoked, Group: g, Parts: parts(m)})
				cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				defer cancel()
				cl.CommitMarkedOffsets(cctx)
			}),
			kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
				w.h.Add(checker.Op{Proc: name, F: checker.Revoked, Group: g, Parts: parts(m), Detail: "lost"})
			}))
	} else {
		// Assigned by hand, resuming where the previous one stopped.
		w.mu.Lock()
		offs := map[int32]kgo.Offset{}
		for p := range int32(partitions) {
			if o, ok := w.position[p]; ok {
				offs[p] = kgo.NewOffset().At(o)
			} else {
				offs[p] = kgo.NewOffset().AtStart()
			}
		}
		w.mu.Unlock()
		opts = append(opts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offs}))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		w.logf("consumer %s: %v", name, err)
		return
	}
	ctx, cancel := context.WithCancel(w.ctx)
	c := &consumer{name: name, group: inGroup, cl: cl, cancel: cancel, done: make(chan struct{})}
	w.mu.Lock()
	w.consumers[name] = c
	w.mu.Unlock()
	if !inGroup {
		all := make([]int32, partitions)
		for i := range all {
			all[i] = int32(i)
		}
		w.h.Add(checker.Op{Proc: name, F: checker.Assigned, Parts: all})
	}
	go func() {
		defer close(c.done)
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			fs.EachPartition(func(p kgo.FetchTopicPartition) {
				if len(p.Records) == 0 {
					return
				}
				op := checker.Op{Proc: name, F: checker.Poll, Group: g, Partition: p.Partition}
				for _, r := range p.Records {
					op.Offsets = append(op.Offsets, r.Offset)
					op.Values = append(op.Values, string(r.Value))
				}
				w.h.Add(op)
				if inGroup {
					cl.MarkCommitRecords(p.Records...)
				} else {
					w.mu.Lock()
					w.position[p.Partition] = p.Records[len(p.Records)-1].Offset + 1
					w.mu.Unlock()
				}
			})
		}
	}()
}

// stopConsumer stops a consumer's loop, then closes its client (a group
// member commits what it recorded and leaves).
func (w *Workload) stopConsumer(c *consumer) {
	c.cancel()
	<-c.done
	c.cl.Close()
	w.mu.Lock()
	delete(w.consumers, c.name)
	w.mu.Unlock()
	w.h.Add(checker.Op{Proc: c.name, F: checker.Revoked, Group: map[bool]string{true: group}[c.group], Parts: allParts(), Detail: "stopped"})
}

func allParts() []int32 {
	out := make([]int32, partitions)
	for i := range out {
		out[i] = int32(i)
	}
	return out
}

// killLoop kills a random consumer now and then and starts a replacement.
func (w *Workload) killLoop() {
	defer w.wg.Done()
	for {
		d := time.Duration(float64(w.cfg.KillEvery) * (0.5 + w.rnd.Float64()))
		select {
		case <-w.ctx.Done():
			return
		case <-time.After(d):
		}
		w.mu.Lock()
		var names []string
		for n := range w.consumers {
			names = append(names, n)
		}
		sort.Strings(names)
		var c *consumer
		if len(names) > 0 {
			c = w.consumers[names[w.rnd.IntN(len(names))]]
		}
		w.mu.Unlock()
		if c == nil {
			continue
		}
		w.h.Add(checker.Op{Proc: "nemesis", F: checker.Fault, Value: "consumer-kill", Detail: "closed " + c.name + " (rebalance)"})
		w.stopConsumer(c)
		w.mu.Lock()
		w.kills++
		w.mu.Unlock()
		w.startConsumer(c.group)
	}
}

// Stop stops producers (waiting for every record to complete) and
// consumers, then records the group's committed offsets.
func (w *Workload) Stop(ctx context.Context) {
	w.cancel()
	w.wg.Wait()
	w.mu.Lock()
	var cs []*consumer
	for _, c := range w.consumers {
		cs = append(cs, c)
	}
	w.mu.Unlock()
	for _, c := range cs {
		w.stopConsumer(c)
	}
	cl, err := kgo.NewClient(clientOpts()...)
	if err != nil {
		return
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for ctx.Err() == nil {
		offs, err := adm.FetchOffsets(ctx, group)
		if err == nil {
			offs.Each(func(o kadm.OffsetResponse) {
				if o.Topic == topic && o.Err == nil {
					w.h.Add(checker.Op{Proc: "final", F: checker.Committed, Group: group, Partition: o.Partition, Offset: o.At})
				}
			})
			return
		}
		time.Sleep(time.Second)
	}
}

// finalRead reads every partition from its start to its high watermark
// with a fresh read_committed client, keeping control records so that its
// position reaches the end even where a transaction marker is last. It
// reports whether it got that far everywhere: a transaction left open
// would hold the last stable offset back and the read short of it.
func finalRead(ctx context.Context, h *History) (bool, error) {
	cl, err := kgo.NewClient(clientOpts()...)
	if err != nil {
		return false, err
	}
	adm := kadm.NewClient(cl)
	var ends kadm.ListedOffsets
	for {
		ends, err = adm.ListEndOffsets(ctx, topic)
		if err == nil && ends.Error() == nil {
			break
		}
		if ctx.Err() != nil {
			cl.Close()
			return false, fmt.Errorf("list end offsets: %v", err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	cl.Close()
	want := map[int32]int64{}
	offs := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
			offs[o.Partition] = kgo.NewOffset().AtStart()
		}
	})
	if len(want) == 0 {
		return true, nil
	}
	rd, err := kgo.NewClient(clientOpts(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offs}), kgo.FetchMaxBytes(16<<20),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())...)
	if err != nil {
		return false, err
	}
	defer rd.Close()
	next := map[int32]int64{}
	for {
		done := true
		for p, hw := range want {
			if next[p] < hw {
				done = false
			}
		}
		if done {
			return true, nil
		}
		fs := rd.PollFetches(ctx)
		if ctx.Err() != nil {
			var short []string
			for p, hw := range want {
				if next[p] < hw {
					short = append(short, fmt.Sprintf("partition %d at %d of %d", p, next[p], hw))
				}
			}
			sort.Strings(short)
			return false, fmt.Errorf("the final read stopped short (a transaction holding the last stable offset back?): %s", strings.Join(short, ", "))
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset < want[r.Partition] && !r.Attrs.IsControl() {
				h.Add(checker.Op{Proc: "final", F: checker.Final, Partition: r.Partition, Offset: r.Offset, Value: string(r.Value)})
			}
			next[r.Partition] = r.Offset + 1
		})
	}
}
