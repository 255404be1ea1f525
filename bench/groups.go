package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// GroupOptions configures the consumer-group benchmark.
type GroupOptions struct {
	Brokers    []string // empty: start an in-process broker on a temp dir
	Members    int      // consumers joining one group at once
	Partitions int      // of the topic they consume
	Committers int      // concurrent clients committing offsets
	Duration   time.Duration
	Logger     *slog.Logger
	Out        io.Writer
}

// GroupResult holds the figures of one group benchmark.
type GroupResult struct {
	// SingleJoin is the time from starting one consumer until it owns
	// every partition: the fixed cost of one join and sync round.
	SingleJoin time.Duration
	// GroupJoin is the same for Members consumers started together, until
	// every partition is owned by exactly one of them.
	GroupJoin time.Duration
	// OneMoreJoin is the rebalance when one more consumer joins that
	// stable group.
	OneMoreJoin time.Duration

	CommitsPerSec  float64 // OffsetCommit requests/s, each for every partition
	ProducesPerSec float64 // baseline: acks=all one-record Produce requests/s, same concurrency
}

// RunGroups measures how long a group of consumers takes to become stable
// and how many offset commits per second the broker sustains, against a
// baseline of produce requests in the same run (both are one durable WAL
// write per request).
func RunGroups(ctx context.Context, o GroupOptions) (*GroupResult, error) {
	if o.Members < 1 || o.Partitions < o.Members || o.Committers < 1 || o.Duration <= 0 {
		return nil, errors.New("need members >= 1, partitions >= members, committers >= 1 and a positive duration")
	}
	out, log := outputs(o.Out, o.Logger)
	bb, err := useBroker(ctx, o.Brokers, log, out)
	if err != nil {
		return nil, err
	}
	defer bb.stop()
	brokers := bb.seeds
	fmt.Fprintf(out, "settings:      %d members, %d partitions, %d committers, %s per throughput phase\n",
		o.Members, o.Partitions, o.Committers, o.Duration)

	admCl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return nil, err
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	topic := "vigil-bench-groups-" + time.Now().Format("20060102-150405.000")
	resp, err := adm.CreateTopic(ctx, int32(o.Partitions), 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return nil, fmt.Errorf("create topic %s: %w", topic, err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		adm.DeleteTopics(dctx, topic)
	}()

	res := &GroupResult{}
	one := &joiner{ctx: ctx, brokers: brokers, topic: topic, group: "vigil-bench-join-1", partitions: o.Partitions}
	res.SingleJoin, err = one.add(1)
	one.close()
	if err != nil {
		return nil, err
	}
	many := &joiner{ctx: ctx, brokers: brokers, topic: topic, group: "vigil-bench-join-n", partitions: o.Partitions}
	defer many.close()
	if res.GroupJoin, err = many.add(o.Members); err != nil {
		return nil, err
	}
	if res.OneMoreJoin, err = many.add(1); err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "\n[a] rebalance: time until every member owns partitions and every partition has one owner\n")
	fmt.Fprintf(out, "    %-27s %s\n", "1 member, new group:", fmtDur(res.SingleJoin))
	fmt.Fprintf(out, "    %-27s %s (%.1f x one member)\n", fmt.Sprintf("%d members, new group:", o.Members), fmtDur(res.GroupJoin),
		float64(res.GroupJoin)/float64(res.SingleJoin))
	fmt.Fprintf(out, "    %-27s %s\n", fmt.Sprintf("1 more joins %d stable:", o.Members), fmtDur(res.OneMoreJoin))
	fmt.Fprintf(out, "    (a new group waits group.initial.rebalance.delay, 3 s by default, and again while members keep arriving;\n")
	fmt.Fprintf(out, "     a stable group's members learn of a rebalance at their next heartbeat, every 3 s in franz-go)\n")

	if res.ProducesPerSec, err = hammer(ctx, brokers, o.Committers, o.Duration, func(ctx context.Context, cl *kgo.Client, i int) error {
		return cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: int32(i % o.Partitions), Value: []byte("x")}).FirstErr()
	}); err != nil {
		return nil, fmt.Errorf("baseline produce: %w", err)
	}
	res.CommitsPerSec, err = hammer(ctx, brokers, o.Committers, o.Duration, func(ctx context.Context, cl *kgo.Client, i int) error {
		offs := kadm.Offsets{}
		for p := range int32(o.Partitions) {
			offs.Add(kadm.Offset{Topic: topic, Partition: p, At: int64(i), LeaderEpoch: -1})
		}
		r, err := kadm.NewClient(cl).CommitOffsets(ctx, fmt.Sprintf("vigil-bench-commit-%d", i%o.Committers), offs)
		if err == nil {
			err = r.Error()
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("offset commits: %w", err)
	}
	fmt.Fprintf(out, "\n[b] offset commits (%d clients, each commit = all %d partitions of one group)\n", o.Committers, o.Partitions)
	fmt.Fprintf(out, "    %-27s %.0f requests/s (acks=all, one record)\n", "baseline produce:", res.ProducesPerSec)
	fmt.Fprintf(out, "    %-27s %.0f commits/s = %.0f partition offsets/s (%.2f x produce)\n", "offset commits:",
		res.CommitsPerSec, res.CommitsPerSec*float64(o.Partitions), res.CommitsPerSec/res.ProducesPerSec)
	return res, nil
}

// joiner runs group consumers and tells when their assignments cover
// every partition exactly once.
type joiner struct {
	ctx        context.Context
	brokers    []string
	topic      string
	group      string
	partitions int

	mu      sync.Mutex
	owned   []map[int32]bool
	clients []*kgo.Client
	stable  chan struct{} // closed when stable with want members
	want    int
}

// add starts n more consumers and returns how long until the group is
// stable with all of them.
func (j *joiner) add(n int) (time.Duration, error) {
	j.mu.Lock()
	j.want += n
	j.stable = make(chan struct{})
	stable := j.stable
	j.mu.Unlock()
	start := time.Now()
	for range n {
		if err := j.start(); err != nil {
			return 0, err
		}
	}
	select {
	case <-stable:
		return time.Since(start), nil
	case <-time.After(2 * time.Minute):
		return 0, fmt.Errorf("group %s of %d members not stable after 2m", j.group, j.want)
	case <-j.ctx.Done():
		return 0, j.ctx.Err()
	}
}

func (j *joiner) start() error {
	j.mu.Lock()
	i := len(j.owned)
	j.owned = append(j.owned, map[int32]bool{})
	j.mu.Unlock()
	update := func(add bool) func(context.Context, *kgo.Client, map[string][]int32) {
		return func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			j.mu.Lock()
			defer j.mu.Unlock()
			for _, p := range m[j.topic] {
				if add {
					j.owned[i][p] = true
				} else {
					delete(j.owned[i], p)
				}
			}
			j.checkLocked()
		}
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(j.brokers...),
		kgo.ConsumerGroup(j.group),
		kgo.ConsumeTopics(j.topic),
		kgo.OnPartitionsAssigned(update(true)),
		kgo.OnPartitionsRevoked(update(false)),
		kgo.OnPartitionsLost(update(false)),
	)
	if err != nil {
		return err
	}
	j.mu.Lock()
	j.clients = append(j.clients, cl)
	j.mu.Unlock()
	// Polling drives the group's join and heartbeat loop.
	go func() {
		for {
			if fs := cl.PollFetches(j.ctx); fs.IsClientClosed() || j.ctx.Err() != nil {
				return
			}
		}
	}()
	return nil
}

// checkLocked closes stable once every member owns something and every
// partition has exactly one owner.
func (j *joiner) checkLocked() {
	if len(j.owned) != j.want {
		return
	}
	count := map[int32]int{}
	for _, m := range j.owned {
		if len(m) == 0 {
			return
		}
		for p := range m {
			count[p]++
		}
	}
	if len(count) != j.partitions {
		return
	}
	for _, c := range count {
		if c != 1 {
			return
		}
	}
	select {
	case <-j.stable:
	default:
		close(j.stable)
	}
}

func (j *joiner) close() {
	j.mu.Lock()
	clients := j.clients
	j.mu.Unlock()
	// Not under mu: closing runs the revoke callbacks, which take it.
	for _, cl := range clients {
		cl.Close()
	}
}

// hammer runs op in a loop on c clients for d and returns the completed
// operations per second. The first error stops the run.
func hammer(ctx context.Context, brokers []string, c int, d time.Duration, op func(context.Context, *kgo.Client, int) error) (float64, error) {
	var done atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	clients := make([]*kgo.Client, c)
	for i := range c {
		cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(0))
		if err != nil {
			return 0, err
		}
		defer cl.Close()
		clients[i] = cl
		if err := op(ctx, cl, i); err != nil { // warm-up: connections, metadata
			return 0, err
		}
	}
	start := time.Now()
	deadline := start.Add(d)
	for i, cl := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := i; time.Now().Before(deadline) && ctx.Err() == nil; n += c {
				if err := op(ctx, cl, n); err != nil {
					errOnce.Do(func() { firstErr = err })
					return
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return 0, firstErr
	}
	return float64(done.Load()) / elapsed.Seconds(), nil
}
