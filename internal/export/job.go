package export

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// DefaultDeadLetterTopic receives the records a sink refuses for good.
const DefaultDeadLetterTopic = "export.deadletter"

// Header names of a dead letter: the sink that refused the record, why,
// and where the record was (the origin header detection and enrichment
// already use).
const (
	HeaderSink   = "vigil.export.sink"
	HeaderReason = "vigil.export.reason"
	HeaderOrigin = "vigil.origin"
)

// DefaultMaxInFlight is a job's requests in flight unless configured
// or its sink says otherwise; MaxInFlightLimit the most it accepts.
const (
	DefaultMaxInFlight = 4
	MaxInFlightLimit   = 64
)

// JobConfig configures one job: one sink, its topics and its group.
type JobConfig struct {
	// Name names the sink in logs, metrics and dead letters.
	Name    string
	Brokers []string
	// Group is the consumer group (default "vigil-export-" + Name).
	Group string
	// InstanceID makes the member static (KIP-345): a restarted job takes
	// its partitions back without a rebalance. Two processes must not
	// share one.
	InstanceID string
	// Topics are read by name, or TopicRegex by a regular expression
	// (topics created later are picked up; the dead-letter topic is never
	// read).
	Topics     []string
	TopicRegex string
	// FromLatest starts a group without committed offsets at the end of
	// the topics instead of their start.
	FromLatest      bool
	DeadLetterTopic string
	// MaxBatchRecords and MaxBatchBytes bound one request to the sink
	// (default 500 records, 5 MiB); MaxPollRecords bounds the batch
	// whose offsets are committed together (default 2000).
	MaxBatchRecords int
	MaxBatchBytes   int
	MaxPollRecords  int
	// MaxInFlight is how many requests to the sink a job has out at once
	// (1 to MaxInFlightLimit; default DefaultMaxInFlight, or the sink's
	// own default if it has one). A polled batch is cut into that many
	// lanes of consecutive records, each delivered as a job with one
	// request in flight does; its offsets are committed once every lane
	// is done.
	MaxInFlight int
	// RetryInitial and RetryMax bound the backoff between retries
	// (default 250ms and 30s); a Retry-After of the sink is honoured up
	// to RetryMax. MaxAttempts > 0 dead-letters a record after that many
	// failed sends (default 0: retry until the sink takes it).
	RetryInitial, RetryMax time.Duration
	MaxAttempts            int
	SessionTimeout         time.Duration
	// ShutdownGrace bounds how long a cancelled job keeps delivering the
	// batch in flight (default 15s); what it does not finish is not
	// committed and is sent again by the next owner.
	ShutdownGrace time.Duration
	ClientOpts    []kgo.Opt
}

func (c *JobConfig) defaults() {
	if c.Group == "" {
		c.Group = "vigil-export-" + c.Name
	}
	if c.DeadLetterTopic == "" {
		c.DeadLetterTopic = DefaultDeadLetterTopic
	}
	if c.MaxBatchRecords <= 0 {
		c.MaxBatchRecords = 500
	}
	if c.MaxBatchBytes <= 0 {
		c.MaxBatchBytes = 5 << 20
	}
	if c.MaxPollRecords <= 0 {
		c.MaxPollRecords = 2000
	}
	if c.RetryInitial <= 0 {
		c.RetryInitial = 250 * time.Millisecond
	}
	if c.RetryMax <= 0 {
		c.RetryMax = 30 * time.Second
	}
	if c.RetryMax < c.RetryInitial {
		c.RetryMax = c.RetryInitial
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.SessionTimeout <= 0 {
		c.SessionTimeout = 45 * time.Second
	}
	if c.ShutdownGrace <= 0 {
		c.ShutdownGrace = 15 * time.Second
	}
}

// Validate checks what defaults cannot fill.
func (c *JobConfig) Validate() error {
	if c.Name == "" {
		return errors.New("a sink needs a name")
	}
	if len(c.Brokers) == 0 {
		return fmt.Errorf("sink %s: no brokers", c.Name)
	}
	if (len(c.Topics) == 0) == (c.TopicRegex == "") {
		return fmt.Errorf("sink %s: give topics or topic_regex (one of them)", c.Name)
	}
	if c.TopicRegex != "" {
		if _, err := regexp.Compile(c.TopicRegex); err != nil {
			return fmt.Errorf("sink %s: topic_regex: %w", c.Name, err)
		}
	}
	if c.MaxInFlight < 0 || c.MaxInFlight > MaxInFlightLimit {
		return fmt.Errorf("sink %s: max_in_flight %d: want 1 to %d", c.Name, c.MaxInFlight, MaxInFlightLimit)
	}
	for _, t := range c.Topics {
		if t == c.DeadLetterTopic || (c.DeadLetterTopic == "" && t == DefaultDeadLetterTopic) {
			return fmt.Errorf("sink %s: topic %s is the dead-letter topic", c.Name, t)
		}
	}
	return nil
}

// Stats are a job's counters.
type Stats struct {
	Records      int64 // records read
	Delivered    int64 // acknowledged by the sink
	Bytes        int64 // value bytes acknowledged
	DeadLettered int64
	Retried      int64 // sends repeated after a retriable failure (records)
	Throttled    int64 // 429/503 answers (requests or items)
	Batches      int64 // batches committed (group mode) or delivered (backfill)
	Outside      int64 // backfill: records between the offsets but outside the times
}

// Job runs one sink.
type Job struct {
	cfg  JobConfig
	sink Sink
	m    *sinkMetrics
	log  *slog.Logger

	dlq *kgo.Client // producer of dead letters

	records, delivered, bytes, dead, retried, throttled, batches, outside atomic.Int64

	// pause and resume stop fetching during a backoff (the group client's
	// topics of the batch in flight); nil in backfill. held counts the
	// lanes waiting, so that fetching resumes once the last one goes on.
	pause, resume func()
	holdMu        sync.Mutex
	held          int

	// notBefore (Unix nanoseconds) is when the job's next request may go.
	// A lane told to wait moves it on, so that the lanes of a batch back
	// off together instead of each hammering the sink until told so.
	notBefore atomic.Int64

	// quit is closed when the job is asked to stop: a backoff then ends
	// at once (the batch is left uncommitted) instead of using up the
	// shutdown grace waiting on a sink that keeps failing.
	quit <-chan struct{}

	lagMu sync.Mutex
	lag   map[tp]lagPos
}

type tp struct {
	topic string
	part  int32
}

type lagPos struct{ hw, next int64 }

// NewJob makes a job; it connects when run. m may be nil (no metrics).
func NewJob(cfg JobConfig, sink Sink, m *Metrics, log *slog.Logger) (*Job, error) {
	if d, ok := sink.(InFlightDefaulter); ok && cfg.MaxInFlight == 0 {
		cfg.MaxInFlight = d.DefaultMaxInFlight()
	}
	cfg.defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if m == nil {
		var err error
		if m, err = NewMetrics(nil); err != nil {
			return nil, err
		}
	}
	j := &Job{cfg: cfg, sink: sink, m: m.For(cfg.Name), log: log.With("sink", cfg.Name), lag: map[tp]lagPos{}}
	var err error
	j.dlq, err = kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(cfg.Brokers...), kgo.ClientID("vigil-export"),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.AllowAutoTopicCreation()}, cfg.ClientOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("export %s: dead-letter producer: %w", cfg.Name, err)
	}
	return j, nil
}

// Name is the sink's name.
func (j *Job) Name() string { return j.cfg.Name }

// Config is the job's configuration with its defaults filled in.
func (j *Job) Config() JobConfig { return j.cfg }

// Stats returns the counters.
func (j *Job) Stats() Stats {
	return Stats{Records: j.records.Load(), Delivered: j.delivered.Load(), Bytes: j.bytes.Load(), DeadLettered: j.dead.Load(),
		Retried: j.retried.Load(), Throttled: j.throttled.Load(), Batches: j.batches.Load(), Outside: j.outside.Load()}
}

// Close closes the dead-letter producer and the sink.
func (j *Job) Close() error {
	j.dlq.Close()
	return j.sink.Close()
}

// Run consumes as the group until ctx is cancelled; then it finishes the
// batch in flight (within ShutdownGrace), commits it and leaves the
// group. It returns an error only if the consumer cannot be made: a sink
// that fails is retried, not given up on.
func (j *Job) Run(ctx context.Context) error {
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(j.cfg.ShutdownGrace, cancelWork) })
	defer stop()
	j.quit = ctx.Done()

	reset := kgo.NewOffset().AtStart()
	if j.cfg.FromLatest {
		reset = kgo.NewOffset().AtEnd()
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(j.cfg.Brokers...),
		kgo.ClientID("vigil-export"),
		kgo.ConsumerGroup(j.cfg.Group),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.SessionTimeout(j.cfg.SessionTimeout),
		kgo.HeartbeatInterval(min(3*time.Second, j.cfg.SessionTimeout/3)),
		kgo.ConsumeResetOffset(reset),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			j.log.Info("partitions assigned", "partitions", m)
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			j.log.Info("partitions revoked", "partitions", m)
			j.forget(m)
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			j.log.Warn("partitions lost", "partitions", m)
			j.forget(m)
		}),
	}
	if j.cfg.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(j.cfg.InstanceID))
	}
	if j.cfg.TopicRegex != "" {
		opts = append(opts, kgo.ConsumeRegex(), kgo.ConsumeTopics(j.cfg.TopicRegex),
			kgo.ConsumeExcludeTopics("^"+regexp.QuoteMeta(j.cfg.DeadLetterTopic)+"$", `^__`), kgo.MetadataMaxAge(10*time.Second))
	} else {
		opts = append(opts, kgo.ConsumeTopics(j.cfg.Topics...))
	}
	cl, err := kgo.NewClient(append(opts, j.cfg.ClientOpts...)...)
	if err != nil {
		return fmt.Errorf("export %s: consumer: %w", j.cfg.Name, err)
	}
	defer func() {
		lctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if j.cfg.InstanceID == "" {
			_ = cl.LeaveGroupContext(lctx)
		}
		cl.Close()
	}()
	j.log.Info("export consuming", "group", j.cfg.Group, "topics", j.cfg.Topics, "topic_regex", j.cfg.TopicRegex,
		"instance_id", j.cfg.InstanceID, "dead_letter_topic", j.cfg.DeadLetterTopic)
	for {
		fetches := cl.PollRecords(ctx, j.cfg.MaxPollRecords)
		if fetches.IsClientClosed() || ctx.Err() != nil {
			cl.AllowRebalance()
			return nil
		}
		fetches.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				j.log.Warn("fetch error", "topic", topic, "partition", p, "err", err)
			}
		})
		j.trackLag(fetches)
		recs := fetches.Records()
		if len(recs) == 0 {
			cl.AllowRebalance()
			continue
		}
		topics := batchTopics(recs)
		j.pause = func() { cl.PauseFetchTopics(topics...) }
		j.resume = func() { cl.ResumeFetchTopics(topics...) }
		err := j.handle(work, recs)
		j.pause, j.resume = nil, nil
		if err == nil {
			if cerr := cl.CommitRecords(work, recs...); cerr != nil {
				// The sink has the records; the next owner sends them
				// again, and their ids make that harmless.
				j.m.commitErr.Inc()
				j.log.Warn("offset commit failed; the batch will be delivered again", "records", len(recs), "err", cerr)
			} else {
				j.m.commits.Inc()
				j.batches.Add(1)
			}
		}
		cl.AllowRebalance()
		if err != nil {
			if work.Err() != nil || ctx.Err() != nil {
				j.log.Warn("shutdown: batch not delivered in time; it is sent again on restart", "records", len(recs), "err", err)
				return nil
			}
			return err
		}
	}
}

func batchTopics(recs []*kgo.Record) []string {
	var out []string
	seen := map[string]bool{}
	for _, r := range recs {
		if !seen[r.Topic] {
			seen[r.Topic] = true
			out = append(out, r.Topic)
		}
	}
	return out
}

// trackLag records each fetched partition's high watermark and the
// position after its last record, and publishes the sum of the gaps.
func (j *Job) trackLag(f kgo.Fetches) {
	j.lagMu.Lock()
	defer j.lagMu.Unlock()
	f.EachPartition(func(p kgo.FetchTopicPartition) {
		if p.Err != nil {
			return
		}
		k := tp{p.Topic, p.Partition}
		pos := j.lag[k]
		pos.hw = p.HighWatermark
		if n := len(p.Records); n > 0 {
			pos.next = p.Records[n-1].Offset + 1
		}
		j.lag[k] = pos
	})
	var sum int64
	for _, p := range j.lag {
		if p.next > 0 && p.hw > p.next {
			sum += p.hw - p.next
		}
	}
	j.m.lag.Set(float64(sum))
}

func (j *Job) forget(m map[string][]int32) {
	j.lagMu.Lock()
	defer j.lagMu.Unlock()
	for t, ps := range m {
		for _, p := range ps {
			delete(j.lag, tp{t, p})
		}
	}
}

// handle delivers a batch: every record ends up acknowledged by the sink
// or in the dead-letter topic. It returns only ctx's error.
func (j *Job) handle(ctx context.Context, recs []*kgo.Record) error {
	j.records.Add(int64(len(recs)))
	docs := make([]*Doc, 0, len(recs))
	var dead []deadLetter
	for _, r := range recs {
		d, err := NewDoc(r)
		if err != nil {
			dead = append(dead, deadLetter{d, err.Error()})
			continue
		}
		docs = append(docs, d)
	}
	more, err := j.deliverLanes(ctx, docs)
	if err != nil {
		return err
	}
	return j.deadLetter(ctx, append(dead, more...))
}

// deliverLanes cuts docs into up to MaxInFlight lanes of consecutive
// records, as many as there are requests' worth of them, and delivers the
// lanes at once, each with one request in flight; it returns when every
// lane is done. The batch is committed only after that, so a lane that
// retries holds back the commit of every record of the batch, those of
// its own partitions included, and a commit never passes a record the
// sink has not acknowledged.
func (j *Job) deliverLanes(ctx context.Context, docs []*Doc) ([]deadLetter, error) {
	lanes := min(j.cfg.MaxInFlight, (len(docs)+j.cfg.MaxBatchRecords-1)/j.cfg.MaxBatchRecords)
	if lanes <= 1 {
		return j.deliver(ctx, docs)
	}
	dead := make([][]deadLetter, lanes)
	errs := make([]error, lanes)
	var wg sync.WaitGroup
	for i := range lanes {
		lane := docs[i*len(docs)/lanes : (i+1)*len(docs)/lanes]
		wg.Go(func() { dead[i], errs[i] = j.deliver(ctx, lane) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return slices.Concat(dead...), nil
}

type deadLetter struct {
	doc    *Doc
	reason string
}

// deliver sends docs in requests of the configured size, one at a time,
// until each is delivered or dead, and returns the dead ones. It is one
// lane: several may run at once.
func (j *Job) deliver(ctx context.Context, docs []*Doc) ([]deadLetter, error) {
	var dead []deadLetter
	var resBuf []Result
	attempts := map[*Doc]int{}
	limit := j.cfg.MaxBatchRecords
	failures := 0 // consecutive sends that made no progress
	queue := docs
	for len(queue) > 0 {
		n, size := 0, 0
		for n < len(queue) && n < limit {
			s := len(queue[n].Record.Value)
			if n > 0 && size+s > j.cfg.MaxBatchBytes {
				break
			}
			size += s
			n++
		}
		chunk := queue[:n]
		if cap(resBuf) < n {
			resBuf = make([]Result, n)
		}
		res := resBuf[:n]
		clear(res)
		if err := j.waitTurn(ctx); err != nil {
			return nil, err
		}
		err := j.sink.Deliver(ctx, chunk, res)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err != nil {
			var re *RequestError
			isRE := errors.As(err, &re)
			if isRE && re.Malformed() {
				if n == 1 {
					j.m.itemErr.Inc()
					dead = append(dead, deadLetter{chunk[0], "request refused: " + re.Error()})
					queue = queue[1:]
					continue
				}
				// Split the request to find the record the sink refuses.
				limit = max(1, n/2)
				j.log.Warn("the sink refused a request as malformed; splitting it", "records", n, "err", err)
				continue
			}
			j.m.reqErr.Inc()
			failures++
			wait := j.backoff(failures)
			if isRE {
				if re.Throttled() {
					j.throttled.Add(1)
					j.m.throttled.Inc()
				}
				wait = max(wait, min(re.RetryAfter, j.cfg.RetryMax))
				if !re.Transient() {
					// Credentials or the endpoint: an operator has to fix
					// it; keep trying, slowly, and say so.
					wait = j.cfg.RetryMax
					j.log.Error("the sink refuses the requests; retrying until it accepts them", "err", err, "retry_in", wait)
				}
			}
			if !isRE || re.Transient() {
				j.log.Warn("request failed; retrying", "records", n, "err", err, "retry_in", wait)
			}
			j.retried.Add(int64(n))
			j.m.retried.Add(float64(n))
			if err := j.sleep(ctx, wait); err != nil {
				return nil, err
			}
			continue
		}
		var retry []*Doc
		var wait time.Duration
		var reason string
		for i, r := range res {
			d := chunk[i]
			switch r.Outcome {
			case Delivered:
				j.delivered.Add(1)
				j.bytes.Add(int64(len(d.Record.Value)))
				j.m.records.Inc()
				j.m.bytes.Add(float64(len(d.Record.Value)))
			case Dead:
				j.m.itemErr.Inc()
				dead = append(dead, deadLetter{d, r.Reason})
			default:
				j.m.itemErr.Inc()
				if r.Throttled {
					j.throttled.Add(1)
					j.m.throttled.Inc()
				}
				attempts[d]++
				if j.cfg.MaxAttempts > 0 && attempts[d] >= j.cfg.MaxAttempts {
					dead = append(dead, deadLetter{d, fmt.Sprintf("gave up after %d attempts: %s", attempts[d], r.Reason)})
					continue
				}
				retry = append(retry, d)
				wait = max(wait, min(r.RetryAfter, j.cfg.RetryMax))
				reason = r.Reason
			}
		}
		rest := queue[n:]
		if len(retry) == 0 {
			queue = rest
			failures = 0
			limit = min(j.cfg.MaxBatchRecords, limit*2)
			continue
		}
		// The retried records go first, so a partition's records keep
		// their order as far as the sink's answers allow.
		queue = append(retry, rest...)
		if len(retry) < n {
			failures = 0 // progress: start the backoff again
		}
		failures++
		wait = max(wait, j.backoff(failures))
		j.retried.Add(int64(len(retry)))
		j.m.retried.Add(float64(len(retry)))
		j.log.Warn("the sink asked for records again", "records", len(retry), "of", n, "reason", reason, "retry_in", wait)
		if err := j.sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
	return dead, nil
}

// backoff is the wait before the n-th consecutive retry: exponential from
// RetryInitial, capped at RetryMax, with 20% jitter so that several jobs
// do not retry in step.
func (j *Job) backoff(n int) time.Duration {
	d := j.cfg.RetryInitial
	for i := 1; i < n && d < j.cfg.RetryMax; i++ {
		d *= 2
	}
	d = min(d, j.cfg.RetryMax)
	return d - time.Duration(rand.Int64N(int64(d)/5+1))
}

// sleep holds the job's requests back for d (or longer, if another lane
// already asked for longer) and waits that out.
func (j *Job) sleep(ctx context.Context, d time.Duration) error {
	until := time.Now().Add(d).UnixNano()
	for {
		cur := j.notBefore.Load()
		if cur >= until || j.notBefore.CompareAndSwap(cur, until) {
			break
		}
	}
	return j.waitTurn(ctx)
}

// waitTurn returns when the job's requests may go again: at once unless a
// lane is backing off.
func (j *Job) waitTurn(ctx context.Context) error {
	for {
		d := time.Until(time.Unix(0, j.notBefore.Load()))
		if d <= 0 {
			return nil
		}
		if err := j.wait(ctx, d); err != nil {
			return err
		}
	}
}

// wait waits d with fetching paused, so that a sink that asks for time
// gets it without the consumer buffering on.
func (j *Job) wait(ctx context.Context, d time.Duration) error {
	j.hold(d)
	defer j.release()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-j.quit:
		return context.Canceled
	}
}

func (j *Job) hold(d time.Duration) {
	j.holdMu.Lock()
	defer j.holdMu.Unlock()
	if j.held == 0 && j.pause != nil {
		j.pause()
	}
	j.held++
	j.m.backoff.Set(d.Seconds())
}

func (j *Job) release() {
	j.holdMu.Lock()
	defer j.holdMu.Unlock()
	if j.held--; j.held == 0 {
		if j.resume != nil {
			j.resume()
		}
		j.m.backoff.Set(0)
	}
}

// deadLetter writes the dead records to the dead-letter topic and waits
// for the broker's acknowledgement (retrying until it comes), so that a
// batch is committed only once its refused records are kept.
func (j *Job) deadLetter(ctx context.Context, dead []deadLetter) error {
	if len(dead) == 0 {
		return nil
	}
	recs := make([]*kgo.Record, len(dead))
	for i, d := range dead {
		r := d.doc.Record
		h := append(append([]kgo.RecordHeader(nil), r.Headers...),
			kgo.RecordHeader{Key: HeaderSink, Value: []byte(j.cfg.Name)},
			kgo.RecordHeader{Key: HeaderReason, Value: []byte(d.reason)},
			kgo.RecordHeader{Key: HeaderOrigin, Value: []byte(d.doc.ID)})
		recs[i] = &kgo.Record{Topic: j.cfg.DeadLetterTopic, Key: r.Key, Value: r.Value, Headers: h, Timestamp: r.Timestamp}
		if i < 10 {
			j.log.Warn("dead-lettered", "record", d.doc.ID, "reason", d.reason)
		}
	}
	for attempt := 1; ; attempt++ {
		err := j.dlq.ProduceSync(ctx, recs...).FirstErr()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		j.m.deadErr.Inc()
		wait := j.backoff(attempt)
		j.log.Error("cannot write to the dead-letter topic; retrying", "topic", j.cfg.DeadLetterTopic, "err", err, "retry_in", wait)
		if err := j.sleep(ctx, wait); err != nil {
			return err
		}
	}
	j.dead.Add(int64(len(dead)))
	j.m.dead.Add(float64(len(dead)))
	return nil
}
